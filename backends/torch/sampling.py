"""The PyTorch sampler: :mod:`transformer_spec.spec.sampling` step by step, in float64 on the host."""

from __future__ import annotations

import torch


class TorchSampling:
    """``_sample`` for :class:`TorchBackend`."""

    # ---------------------------------------------------------------- sampling
    _TOP_P_FIRST_GUESS = 256  # top-p without top-k: how many of the most probable tokens to rank first (grows x4)

    def _sample(self, logits, u, temperature, top_k, top_p):
        if temperature == 0:
            return int(torch.argmax(logits))  # torch.argmax returns the first maximum: lowest index on ties
        # The sampler needs one Python int, so the V scores come to the host anyway; float64 there keeps the
        # cumulative sums as close to the float64 reference as possible.
        z = logits.detach().to(device="cpu", dtype=torch.float64)  # (V,)
        # (z - max) / T equals z / T up to a constant (softmax ignores it) but cannot overflow for a small T.
        p = torch.softmax((z - z.max()) / temperature, dim=-1)  # (V,)
        V = p.shape[0]
        if top_k is None and top_p is None:
            kept = p
        else:
            if top_k is not None:
                order = _most_probable(p, top_k)  # (min(k, V),) most probable first, ties by lower index
                mass = torch.cumsum(p[order], dim=0) / p[order].sum()  # renormalised over the top-k
            else:
                # Rank only as many tokens as the top-p prefix needs: a few hundred for a peaked distribution,
                # instead of a stable sort of the whole vocabulary on every decoding step.
                ranked = min(V, self._TOP_P_FIRST_GUESS)
                while True:
                    order = _most_probable(p, ranked)  # (ranked,)
                    # With every token ranked, normalise like the reference (sum in sorted order); before, by the total.
                    mass = torch.cumsum(p[order], dim=0) / (p[order].sum() if ranked == V else p.sum())
                    if ranked == V or bool(mass[-1] >= top_p):
                        break
                    ranked = min(V, 4 * ranked)
            if top_p is not None:
                crossing = int(torch.searchsorted(mass, torch.tensor([top_p], dtype=torch.float64), side="left"))
                order = order[: crossing + 1]  # keep the token that crosses top_p
            kept = torch.zeros_like(p)
            kept[order] = p[order]
        cumulative = torch.cumsum(kept / kept.sum(), dim=0)  # (V,), in vocabulary order
        index = int(
            torch.searchsorted(cumulative, torch.tensor([u], dtype=torch.float64), side="right")
        )  # first i with cumulative[i] > u
        if index < V:
            return index
        return int(torch.nonzero(kept).max())  # rounding left the total <= u: the last token that can be drawn


def _most_probable(p: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` indices of ``argsort(-p, stable=True)`` (most probable first, ties by lower index).

    Without sorting all V entries: ``topk`` finds the count-th largest probability t; the indices with p >= t,
    in vocabulary order, stably sorted by -p, are a prefix of the full stable order (every tie at t included)
    at least ``count`` long.
    """
    if count >= p.shape[0]:
        return torch.argsort(-p, stable=True)  # (V,)
    threshold = torch.topk(p, count, sorted=False).values.min()
    candidates = torch.nonzero(p >= threshold).squeeze(1)  # (M,) with M >= count, in vocabulary order
    return candidates[torch.argsort(-p[candidates], stable=True)][:count]  # (count,)
