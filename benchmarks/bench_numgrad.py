"""Numerical gradients: fastnet's structure-aware kernel and generic compiled loop beside the book's loop.

The book's loop (`fastnet.reference.numerical_gradient`) needs about 10 s for the full 784-50-10
gradient, so its benchmarks perturb a subset of W1's entries (`indices=`); every parameter costs
it the same two full loss evaluations, so the full time is (subset time / subset size) x number of
parameters. The track_ ratios measure both sides in the same process, one after the other.
"""

from __future__ import annotations

from .common import batch, cached, median_seconds, mnist_batch, spread_indices

NETS = {
    "784-50-10 b100": ((784, 50, 10), 100),
    "784-100-10 b256": ((784, 100, 10), 256),
}
SUBSET = 100  # W1 entries the reference perturbs in one timed call


def _numgrad_state(net, data):
    """(fastnet net, reference net, x, t, W1 subset indices), built and compiled once per process."""
    def build():
        import fastnet
        from fastnet import reference

        sizes, n = NETS[net]
        x, t = batch(data, n)
        fnet = fastnet.TwoLayerNet(*sizes, seed=0)
        ref = reference.TwoLayerNet.from_params(fnet.params)
        idx = spread_indices(ref.params["W1"].size, SUBSET)
        fnet.numerical_gradient(x, t)  # compile outside any timing
        fnet.gradient(x, t)
        return fnet, ref, x, t, idx
    return cached(("numgrad", net, data), build)


class NumericalGradient:
    """Full structure-aware numerical gradient (all parameters) vs the reference on SUBSET W1 entries."""

    params = (list(NETS), ["mnist", "dense"])
    param_names = ["net", "data"]
    timeout = 300

    def setup(self, net, data):
        self.fnet, self.ref, self.x, self.t, self.idx = _numgrad_state(net, data)

    def _reference_subset(self):
        from fastnet import reference

        ref, x, t = self.ref, self.x, self.t
        return reference.numerical_gradient(lambda W: ref.loss(x, t), ref.params["W1"],
                                            indices=self.idx)

    def time_fastnet(self, net, data):
        """fastnet: every parameter (39,760 for 784-50-10)."""
        self.fnet.numerical_gradient(self.x, self.t)

    def time_reference_subset(self, net, data):
        """Reference: SUBSET (100) W1 entries only; scale by n_params / 100 for the full gradient."""
        self._reference_subset()

    def time_fastnet_backprop(self, net, data):
        """fastnet's backprop gradient, the yardstick of the numerical gradient's cost."""
        self.fnet.gradient(self.x, self.t)

    def track_fastnet_over_reference(self, net, data):
        """fastnet full numerical gradient time / reference full time (extrapolated from 100 W1 entries)."""
        fast = median_seconds(lambda: self.fnet.numerical_gradient(self.x, self.t), 15)
        sub = median_seconds(self._reference_subset, 3)
        n_params = sum(p.size for p in self.ref.params.values())
        return fast / (sub / len(self.idx) * n_params)

    track_fastnet_over_reference.unit = (
        "ratio fastnet/reference (reference extrapolated from 100 W1 entries)")

    def track_numgrad_over_backprop(self, net, data):
        """fastnet numerical gradient time / fastnet backprop time (target: <= 6)."""
        fast = median_seconds(lambda: self.fnet.numerical_gradient(self.x, self.t), 15)
        bp = median_seconds(lambda: self.fnet.gradient(self.x, self.t), 15)
        return fast / bp

    track_numgrad_over_backprop.unit = "ratio numerical gradient/backprop"


class NumericalGradientSteps:
    """784-50-10, batch 100, MNIST: the structure-aware gradient across step sizes.

    Small steps take the polynomial path; at h = 0.5 the hidden units' loss changes need libm per
    class, done once per (sample, pixel value). The reference costs the same at every h.
    """

    params = ([1e-4, 1e-2, 0.5],)
    param_names = ["h"]
    timeout = 300

    def setup(self, h):
        self.fnet, self.ref, self.x, self.t, self.idx = _numgrad_state("784-50-10 b100", "mnist")
        self.fnet.numerical_gradient(self.x, self.t, h=h)  # same signature: no compile, warms caches

    def _reference_subset(self, h):
        from fastnet import reference

        ref, x, t = self.ref, self.x, self.t
        return reference.numerical_gradient(lambda W: ref.loss(x, t), ref.params["W1"], h=h,
                                            indices=self.idx)

    def time_fastnet(self, h):
        """fastnet: every parameter at step h."""
        self.fnet.numerical_gradient(self.x, self.t, h=h)

    def time_reference_subset(self, h):
        """Reference: SUBSET (100) W1 entries at step h."""
        self._reference_subset(h)

    def track_fastnet_over_reference(self, h):
        """fastnet full numerical gradient time / reference full time (extrapolated), at step h."""
        fast = median_seconds(lambda: self.fnet.numerical_gradient(self.x, self.t, h=h), 7)
        sub = median_seconds(lambda: self._reference_subset(h), 3)
        n_params = sum(p.size for p in self.ref.params.values())
        return fast / (sub / len(self.idx) * n_params)

    track_fastnet_over_reference.unit = (
        "ratio fastnet/reference (reference extrapolated from 100 W1 entries)")


class NumericalGradientLoss:
    """784-50-10, batch 100, MNIST: the structure-aware gradient for each loss of the softmax.

    The sum of squares has its own exact kernel path (series of the loss change instead of the
    cross-entropy's log1p of class moments); the ratio tracks that it stays in the same class.
    """

    params = (["cross_entropy", "sum_squared"],)
    param_names = ["loss"]
    timeout = 300

    def setup(self, loss):
        def build():
            import fastnet
            from fastnet import reference

            fnet = fastnet.TwoLayerNet(784, 50, 10, seed=0, loss=loss)
            ref = reference.TwoLayerNet.from_params(fnet.params, delta=0.0, loss=loss)
            x, t = mnist_batch(100)
            fnet.numerical_gradient(x, t)  # compile outside any timing
            ce = fastnet.TwoLayerNet(784, 50, 10, seed=0)
            ce.numerical_gradient(x, t)
            return fnet, ce, ref, x, t, spread_indices(ref.params["W1"].size, SUBSET)
        self.fnet, self.ce, self.ref, self.x, self.t, self.idx = cached(("numgrad-loss", loss), build)

    def time_fastnet(self, loss):
        """fastnet: every parameter, with this loss."""
        self.fnet.numerical_gradient(self.x, self.t)

    def time_reference_subset(self, loss):
        """Reference: SUBSET (100) W1 entries with this loss."""
        from fastnet import reference

        ref, x, t = self.ref, self.x, self.t
        reference.numerical_gradient(lambda W: ref.loss(x, t), ref.params["W1"], indices=self.idx)

    def track_over_cross_entropy(self, loss):
        """This loss's numerical gradient time / the cross-entropy's, same net and batch (1 for it)."""
        mine = median_seconds(lambda: self.fnet.numerical_gradient(self.x, self.t), 15)
        ce = median_seconds(lambda: self.ce.numerical_gradient(self.x, self.t), 15)
        return mine / ce

    track_over_cross_entropy.unit = "ratio loss/cross_entropy"


class NumericalGradientLoop:
    """Generic compiled loop on W2 of 784-50-10 (batch 100, MNIST-like) vs the reference on all of W2."""

    timeout = 300

    def setup(self):
        def build():
            import numba

            import fastnet
            import kernels
            from fastnet import reference

            @numba.njit
            def w2_loss(W2, x, t, W1, b1, b2):
                return kernels.two_layer_loss(x, t, W1, b1, W2, b2)

            x, t = mnist_batch(100)
            fnet = fastnet.TwoLayerNet(784, 50, 10, seed=0)
            p = {k: fnet.params[k].copy() for k in ("W1", "b1", "W2", "b2")}
            ref = reference.TwoLayerNet.from_params(p, delta=0.0)
            args = (x, t, p["W1"], p["b1"], p["b2"])
            fastnet.numerical_gradient(w2_loss, p["W2"], args=args)  # compile
            return w2_loss, p, ref, x, t, args
        self.f, self.p, self.ref, self.x, self.t, self.args = cached("loop", build)

    def _reference(self):
        from fastnet import reference

        ref, x, t = self.ref, self.x, self.t
        return reference.numerical_gradient(lambda W: ref.loss(x, t), ref.params["W2"])

    def _fastnet(self):
        import fastnet

        return fastnet.numerical_gradient(self.f, self.p["W2"], args=self.args)

    def time_fastnet(self):
        """fastnet.numerical_gradient(njit loss of W2, W2, args=...): all 500 entries."""
        self._fastnet()

    def time_reference(self):
        """reference.numerical_gradient on all 500 entries of W2 (no extrapolation)."""
        self._reference()

    def track_fastnet_over_reference(self):
        """fastnet generic loop time / reference time, both on all of W2."""
        return median_seconds(self._fastnet, 15) / median_seconds(self._reference, 3)

    track_fastnet_over_reference.unit = "ratio fastnet/reference (all of W2)"


class NumericalGradientMemory:
    """Peak memory (whole process) of the numerical gradient of 784-100-10 at batch 1000."""

    timeout = 300

    def setup(self):
        def build():
            import fastnet
            from fastnet import reference

            x, t = mnist_batch(1000)
            fnet = fastnet.TwoLayerNet(784, 100, 10, seed=0)
            ref = reference.TwoLayerNet.from_params(fnet.params)
            fnet.numerical_gradient(x[:2], t[:2])  # compile on a tiny batch: same signature
            return fnet, ref, x, t
        self.fnet, self.ref, self.x, self.t = cached("memory", build)

    def peakmem_fastnet(self):
        """fastnet: full numerical gradient."""
        self.fnet.numerical_gradient(self.x, self.t)

    def peakmem_reference(self):
        """Reference on 10 W1 entries: its memory does not grow with the number of entries."""
        from fastnet import reference

        ref, x, t = self.ref, self.x, self.t
        reference.numerical_gradient(lambda W: ref.loss(x, t), ref.params["W1"],
                                     indices=spread_indices(ref.params["W1"].size, 10))
