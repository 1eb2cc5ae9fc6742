"""Side effects behind thin modules: the model registry, git, the GitHub API."""
