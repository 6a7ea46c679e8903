"""Every comparison head against a brute-force loop over all windows."""
import pytest
import torch

from tracker.models.heads import HEADS, build_head


def brute_force(name: str, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    nz, _, h, w = z.shape
    nx, _, hh, ww = x.shape
    k = nx // nz
    out = torch.zeros(nx, 1, hh - h + 1, ww - w + 1, dtype=torch.float64)
    for n in range(nx):
        e = z[n // k].double()
        for i in range(hh - h + 1):
            for j in range(ww - w + 1):
                win = x[n, :, i:i + h, j:j + w].double()
                if name == "xcorr":
                    v = (e * win).sum()
                elif name == "cosine":
                    v = (e * win).sum() / (e.norm() * win.norm())
                elif name == "euclidean":
                    v = -((e - win) ** 2).sum()
                else:
                    v = -(e - win).abs().sum()
                out[n, 0, i, j] = v
    return out


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("nz,k", [(1, 1), (1, 3), (2, 3), (4, 1)])
def test_head_matches_brute_force(name, nz, k):
    g = torch.Generator().manual_seed(nz * 10 + k)
    z = torch.randn(nz, 5, 3, 4, generator=g)
    x = torch.randn(nz * k, 5, 9, 8, generator=g)
    head = build_head(name)
    with torch.no_grad():
        head.bias.fill_(0.25)
        got = head(z, x).double()
    want = brute_force(name, z, x) * head.out_scale + 0.25
    assert got.shape == (nz * k, 1, 7, 5)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * max(1.0, want.abs().max().item()))


def test_default_scales_and_order():
    assert build_head("xcorr").out_scale == 1e-3
    z = torch.zeros(1, 2, 2, 2)
    x = torch.zeros(1, 2, 4, 4)
    x[0, :, 1:3, 2:4] = 1.0
    z[:] = 1.0
    for name in HEADS:  # every head must score the identical window highest
        r = build_head(name)(z, x)[0, 0]
        assert divmod(int(r.argmax()), r.shape[1]) == (1, 2), name


def test_head_errors_are_clear():
    with pytest.raises(ValueError, match="unknown head 'dot'; choose one of: cosine, euclidean, manhattan, xcorr"):
        build_head("dot")
    with pytest.raises(ValueError, match="not a multiple"):
        build_head("xcorr")(torch.zeros(2, 3, 2, 2), torch.zeros(3, 3, 5, 5))
    with pytest.raises(ValueError, match="exemplar has 3 channels but search has 4"):
        build_head("xcorr")(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 5, 5))


@pytest.mark.parametrize("nz,k", [(1, 3), (3, 2), (5, 1)])
def test_correlate_equals_siamfc_grouped_convolution(nz, k):
    """`correlate` must equal SiamFC's formulation: one grouped conv, each search map with its exemplar."""
    import torch.nn.functional as F

    from tracker.models.heads import correlate
    g = torch.Generator().manual_seed(nz + 7 * k)
    z = torch.randn(nz, 6, 6, 6, generator=g)
    x = torch.randn(nz * k, 6, 22, 22, generator=g)
    grouped = F.conv2d(x.reshape(1, -1, 22, 22), z.repeat_interleave(k, dim=0), groups=nz * k).view(nz * k, 1, 17, 17)
    torch.testing.assert_close(correlate(z, x), grouped, rtol=1e-4, atol=1e-4)
