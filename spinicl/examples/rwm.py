"""Random-walk Metropolis on a batch of chains: the README's example user sampler."""
from types import SimpleNamespace

import numpy as np


def make_sampler(target):
    # isotropic Gaussian proposal, 2.38/sqrt(n) of the narrowest thermal width
    scale = 2.38 / np.sqrt(target.n * target.beta * target.curvature)

    def init(position):
        return SimpleNamespace(position=position, energy=target.energy(position))

    def step(rng, state):
        proposal = state.position + scale * rng.standard_normal(state.position.shape)
        energy = target.energy(proposal)
        accept = np.log(rng.random(energy.shape)) < -target.beta * (energy - state.energy)
        position = np.where(accept[:, None], proposal, state.position)
        state = SimpleNamespace(position=position,
                                energy=np.where(accept, energy, state.energy))
        return state, SimpleNamespace(acceptance=accept.mean())

    return SimpleNamespace(init=init, step=step)
