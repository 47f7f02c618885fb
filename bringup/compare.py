"""Compare ttnn results with the HF reference: PCC and recorded HF activations."""

import torch


def pcc(expected: torch.Tensor, actual: torch.Tensor) -> float:
    """Return the Pearson correlation coefficient of two tensors of the same number of elements.

    Two constant tensors that are equal give 1.0; a constant tensor against a varying one gives 0.0.
    """
    expected = expected.detach().flatten().to(torch.float64)
    actual = actual.detach().flatten().to(torch.float64)
    if expected.numel() != actual.numel():
        raise ValueError(f"cannot compare {expected.numel()} values with {actual.numel()}")
    expected = expected - expected.mean()
    actual = actual - actual.mean()
    norms = expected.norm() * actual.norm()
    if norms == 0:
        return 1.0 if torch.equal(expected, actual) else 0.0
    return float((expected @ actual) / norms)


class ActivationRecorder:
    """Record the input and output of chosen HF submodules during a forward pass.

    Use it as a context manager around the HF call. Afterwards `inputs[name]` and `outputs[name]`
    contain the first input (positional, or the `hidden_states` keyword that HF passes) and the
    first output of each module, detached, in float32.
    """

    def __init__(self, model: torch.nn.Module, names: list):
        self.modules = {name: model.get_submodule(name) for name in names}
        self.inputs = {}
        self.outputs = {}
        self.handles = []

    def __enter__(self):
        for name, module in self.modules.items():
            self.handles.append(module.register_forward_hook(self.hook(name), with_kwargs=True))
        return self

    def __exit__(self, *exc_info):
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def hook(self, name):
        def record(module, args, kwargs, output):
            first_input = args[0] if args else kwargs.get("hidden_states")
            if first_input is not None:
                self.inputs[name] = first_input.detach().float().clone()
            first = output[0] if isinstance(output, tuple) else output
            self.outputs[name] = first.detach().float().clone()

        return record
