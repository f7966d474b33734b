"""SSIM kernels, centring, PSD tools and scikit-learn estimators (to come)."""
