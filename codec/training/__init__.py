"""Training the cascade: data, PCA initialisation, stage-by-stage optimisation."""
