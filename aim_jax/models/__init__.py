"""AIM networks: SIREN MLPs and the AIM ensemble."""
