"""Test helpers shared by several test modules: stand-ins for services the project talks to."""
