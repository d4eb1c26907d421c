"""The PyTorch bridge of ``micrograd_fast.nn``: ``MLP.to_torch()`` and
``MLP.from_torch(seq)`` call these.  torch is imported on first use only."""

from micrograd_fast import nn
from micrograd_fast._vocab import ACTIVATIONS


def torch_module(torch, act):
    """The ``torch.nn`` module class of an activation: the one named by its
    display name in ``nn`` (``ReLU`` for relu), ``Identity`` for linear.
    The one mapping both directions of the bridge use."""
    if act == "linear":
        return torch.nn.Identity
    return getattr(torch.nn, nn._REPR_NAMES[act])


def import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "the PyTorch bridge needs torch; install it with 'pip install torch'"
        ) from exc
    return torch


def to_torch(model):
    """An equivalent ``torch.nn.Sequential`` (float64) of ``model``, an MLP:
    per layer a ``Linear`` followed by its activation's module
    (``torch_module``; nothing for a linear layer), with the model's weights
    copied in."""
    torch = import_torch()
    mods = []
    for i, layer in enumerate(model.layers):
        spec = layer._spec()
        if spec is None:
            raise ValueError(f"layer {i} mixes activations; torch needs one per layer")
        W, B, act = spec
        lin = torch.nn.Linear(layer.nin, len(B), dtype=torch.float64)
        arrays = layer.state_dict()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(arrays["weight"]))
            lin.bias.copy_(torch.from_numpy(arrays["bias"]))
        mods.append(lin)
        if act != "linear":
            mods.append(torch_module(torch, act)())
    return torch.nn.Sequential(*mods)


def from_torch(cls, seq, engine=None):
    """An MLP (of class ``cls``) equal to ``seq``, a ``torch.nn.Sequential``
    of ``Linear`` layers, each optionally followed by the module of one of
    ``ACTIVATIONS`` (``torch_module``).  Draws no random numbers."""
    torch = import_torch()
    eng = nn._resolve_engine(engine)
    V = eng.Value
    mods = list(seq)
    layers = []
    i = 0
    while i < len(mods):
        lin = mods[i]
        if not isinstance(lin, torch.nn.Linear):
            raise ValueError(
                f"from_torch: expected Linear at position {i}, got {type(lin).__name__}"
            )
        act = "linear"
        if i + 1 < len(mods) and not isinstance(mods[i + 1], torch.nn.Linear):
            act = _act_name(torch, mods[i + 1])
            i += 1
        i += 1
        W = lin.weight.detach().to(torch.float64).cpu().numpy().tolist()
        if lin.bias is not None:
            B = lin.bias.detach().to(torch.float64).cpu().numpy().tolist()
        else:
            B = [0.0] * len(W)
        nonlin = act != "linear"
        neurons = [
            nn.Neuron._from_values(
                [V(w) for w in row], V(b), nonlin, act if nonlin else "relu", eng
            )
            for row, b in zip(W, B)
        ]
        layers.append(nn.Layer._from_neurons(neurons, eng))
    if not layers:
        raise ValueError("from_torch: the Sequential has no Linear layer")
    for k in range(1, len(layers)):
        if layers[k].nin != len(layers[k - 1].neurons):
            raise ValueError(f"from_torch: layer {k} does not fit the one before")
    return cls._from_layers(layers, eng)


def _act_name(torch, mod):
    for name in ACTIVATIONS:
        if type(mod) is torch_module(torch, name):
            # a module set to another function than its default is not ours
            # (GELU(approximate='tanh'))
            if getattr(mod, "approximate", "none") != "none":
                raise ValueError(
                    f"from_torch: unsupported {type(mod).__name__}"
                    f"(approximate={mod.approximate!r}); only the exact form is"
                )
            return name
    raise ValueError(f"from_torch: unsupported module {type(mod).__name__}")
