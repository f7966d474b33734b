"""MMD, conditional MMD, two-sample tests and generative moment-matching networks (to come)."""
