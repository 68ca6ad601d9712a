"""Azure: the platform on ADLS Gen2, Key Vault, Container Registry and Azure ML registries."""
