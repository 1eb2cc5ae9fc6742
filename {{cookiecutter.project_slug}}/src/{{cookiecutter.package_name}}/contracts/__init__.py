"""Documents shared by delivery, serving and monitoring: small and light to import."""
