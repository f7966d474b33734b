"""Direct O(n^2) MMD/CMMD formulas of docs/mmd.md (NumPy only), independent
of the library's tiled weighted form: the GMMN tests check the models' losses with them."""

import numpy as np

import ssimref


class LocalRBFMixture:
    def __init__(self, variances=(2, 5, 10, 20, 40, 80), weights=None):
        self.variances = tuple(float(v) for v in variances)

    @staticmethod
    def _d2(X, Y):
        return np.maximum(np.sum(X**2, 1)[:, None] + np.sum(Y**2, 1)[None, :] - 2 * X @ Y.T, 0)

    def gram(self, X, Y=None):
        d2 = self._d2(X, X if Y is None else Y)
        return sum(np.exp(-d2 / (2 * s)) for s in self.variances)

    def gram_vjp(self, X, Y, G, wrt_y=False):
        """d/dx_i sum_j G_ij k(x_i, y_j) = sum_s (A Y - diag(A 1) X)_i / s, A = G o K_s."""
        Y = X if Y is None else Y
        d2 = self._d2(X, Y)
        dX = np.zeros_like(X)
        for s in self.variances:
            A = G * np.exp(-d2 / (2 * s))
            dX += (A @ Y - A.sum(axis=1)[:, None] * X) / s
        return dX


class LocalSSIMDistanceKernel:
    def __init__(self, kind="eq2", power=1, config=None):
        self.kind, self.config = kind, config

    def distances(self, X, Y):
        return ssimref.distance_matrix(X, Y, self.kind, self.config)


def local_mmd2_and_grad(X, Y, kernel, estimator="biased", sqrt=False):
    n, m = X.shape[0], Y.shape[0]
    if isinstance(kernel, LocalSSIMDistanceKernel):
        # MMD^2 with the distance-induced kernel = E D(X,Y) - E D(X,X')/2 - E D(Y,Y')/2
        Dxy, Dxx = kernel.distances(X, Y), kernel.distances(X, None)
        Dyy = kernel.distances(Y, None)
        value = Dxy.mean() - Dxx.mean() / 2 - Dyy.mean() / 2
        gx_xy, _ = ssimref.distance_matrix_vjp(X, Y, np.full((n, m), 1.0 / (n * m)),
                                               kernel.kind, kernel.config)
        gx_xx, _ = ssimref.distance_matrix_vjp(X, None, np.full((n, n), -0.5 / n**2),
                                               kernel.kind, kernel.config)
        return value, gx_xy + gx_xx
    Kxx, Kyy, Kxy = kernel.gram(X), kernel.gram(Y), kernel.gram(X, Y)
    if estimator == "unbiased":
        value = ((Kxx.sum() - np.trace(Kxx)) / (n * (n - 1))
                 + (Kyy.sum() - np.trace(Kyy)) / (m * (m - 1)) - 2 * Kxy.mean())
        Gxx = (1 - np.eye(n)) / (n * (n - 1))
    else:
        value = Kxx.mean() + Kyy.mean() - 2 * Kxy.mean()
        Gxx = np.full((n, n), 1.0 / n**2)
    dX = 2 * kernel.gram_vjp(X, X, Gxx) - 2 * kernel.gram_vjp(X, Y, np.full((n, m), 1.0 / (n * m)))
    return value, dX


def local_mmd2(X, Y, kernel, estimator="biased"):
    return local_mmd2_and_grad(X, Y, kernel, estimator)[0]


def local_cmmd2_and_grad(Y_gen, Y_data, conditions, kernel, condition_kernel="delta",
                         lam=1e-3):
    """One-hot closed form: sum_c (n_c / (n_c + lam))^2 MMD_b^2(class c)."""
    conditions = np.asarray(conditions)
    value, grad = 0.0, np.zeros_like(Y_gen)
    for c in np.unique(conditions):
        rows = conditions == c
        n_c = int(rows.sum())
        w = (n_c / (n_c + lam)) ** 2
        v, g = local_mmd2_and_grad(Y_gen[rows], Y_data[rows], kernel)
        value += w * v
        grad[rows] = w * g
    return value, grad

