"""Verification: slow, obviously-correct oracles and tools to check SSIM implementations."""
