"""The emulated n150 device: program launches, the program cache and trace capture/replay."""

import torch
import ttnn

from ttnn_emulator.tensor import DeviceTensor, round_to_dtype

# A Wormhole n150 exposes an 8 x 8 grid of Tensix worker cores to ttnn.
WORKER_GRID = (8, 8)


class TraceRecord:
    """One program launch recorded inside a trace capture."""

    def __init__(self, kernel, inputs, outputs, inplace_target):
        self.kernel = kernel
        self.inputs = inputs
        self.outputs = outputs
        self.inplace_target = inplace_target


class EmulatedDevice:
    """An n150 whose programs run as torch code on the host CPU.

    Every op goes through `launch`, which validates its inputs like the card's runtime, keeps a
    program cache keyed by op and input specs, and, while a trace is being captured, records the
    launch instead of applying its effects.
    """

    def __init__(self, device_id, l1_small_size, trace_region_size):
        self.device_id = device_id
        self.l1_small_size = l1_small_size
        self.trace_region_size = trace_region_size
        self.is_open = True
        self.program_cache = set()
        self.capturing = None
        self.capture_records = []
        self.traces = {}
        self.next_trace_id = 0

    # The parts of ttnn's Device interface that model code reads.
    def id(self):
        return self.device_id

    def arch(self):
        return ttnn.device.Arch.WORMHOLE_B0

    def compute_with_storage_grid_size(self):
        return ttnn.CoreCoord(WORKER_GRID[1], WORKER_GRID[0])

    @property
    def core_grid(self):
        return ttnn.CoreGrid(y=WORKER_GRID[0], x=WORKER_GRID[1])

    def get_num_devices(self):
        return 1

    def __repr__(self):
        state = "open" if self.is_open else "closed"
        return f"<emulated n150 device {self.device_id}, {state}>"

    def check_open(self, op_name):
        if not self.is_open:
            raise RuntimeError(f"{op_name}: device {self.device_id} is closed")

    def check_host_write(self, op_name):
        """Raise if a host-to-device write is attempted while a trace is being captured."""
        self.check_open(op_name)
        if self.capturing is not None:
            raise RuntimeError(
                f"{op_name}: host-to-device writes are not allowed during trace capture "
                f"(trace {self.capturing}); allocate and fill device tensors before "
                "ttnn.begin_trace_capture and refresh them with ttnn.copy_host_to_device_tensor "
                "between ttnn.execute_trace calls"
            )

    def check_host_read(self, op_name):
        """Raise if a device-to-host read is attempted while a trace is being captured."""
        self.check_open(op_name)
        if self.capturing is not None:
            raise RuntimeError(
                f"{op_name}: device-to-host reads are not allowed during trace capture "
                f"(trace {self.capturing}); read outputs after ttnn.end_trace_capture and "
                "ttnn.execute_trace"
            )

    def launch(self, op_name, kernel, inputs, output_specs, static_args=(), inplace_target=None):
        """Run one device program and return its output tensors.

        `kernel` maps the torch values of `inputs` (None entries stay None) to one torch tensor per
        entry of `output_specs`, a list of (dtype, layout, memory_config). With `inplace_target`,
        the kernel may update the target's value in place and returns the new value, which
        replaces the target's; the target is returned.
        """
        self.check_open(op_name)
        key = (op_name, static_args) + tuple(
            None if t is None else (tuple(t.value.shape), t.dtype, t.layout) for t in inputs
        )
        if self.capturing is not None:
            # NOTE: modeled on tt-metal, where a first compile writes kernel binaries. Not checked
            # on a card with ttnn 0.81.1, which may compile inside a capture without complaint.
            if key not in self.program_cache:
                raise RuntimeError(
                    f"{op_name}: this program (same op, shapes and arguments) was not compiled "
                    "before trace capture began; compiling inside a capture would write kernel "
                    "binaries to the device, which capture forbids. Run the same step once "
                    "outside the trace first"
                )
        else:
            for tensor in inputs:
                if tensor is not None and tensor.written_by_capture:
                    raise RuntimeError(
                        f"{op_name}: an input was written by a trace capture and contains no data "
                        "until ttnn.execute_trace runs that trace"
                    )
        self.program_cache.add(key)

        if inplace_target is not None:
            # In-place kernels may write into the target's storage, so a capture only records them.
            if self.capturing is None:
                result = run_kernel(kernel, inputs)[0]
                inplace_target.value = round_to_dtype(
                    result, inplace_target.dtype, inplace_target.layout
                )
            else:
                self.capture_records.append(TraceRecord(kernel, inputs, [], inplace_target))
            return [inplace_target]

        results = run_kernel(kernel, inputs)
        outputs = []
        for result, (dtype, layout, memory_config) in zip(results, output_specs):
            value = owned_value(round_to_dtype(result, dtype, layout), inputs, outputs)
            outputs.append(DeviceTensor(value, dtype, layout, self, memory_config))
        if self.capturing is not None:
            for output in outputs:
                output.written_by_capture = True
            self.capture_records.append(TraceRecord(kernel, inputs, outputs, None))
        return outputs

    def begin_capture(self):
        self.check_open("ttnn.begin_trace_capture")
        if self.trace_region_size == 0:
            raise RuntimeError(
                "ttnn.begin_trace_capture: the device was opened with trace_region_size=0, so "
                "there is no trace region to capture into; open it with "
                "ttnn.open_device(device_id=..., trace_region_size=<bytes>), e.g. 32 MiB"
            )
        if self.capturing is not None:
            raise RuntimeError(
                f"ttnn.begin_trace_capture: trace {self.capturing} is still being captured; "
                "end it with ttnn.end_trace_capture first"
            )
        trace_id = self.next_trace_id
        self.next_trace_id += 1
        self.capturing = trace_id
        self.capture_records = []
        return ttnn.MeshTraceId(trace_id)

    def end_capture(self, trace_id):
        self.check_open("ttnn.end_trace_capture")
        if self.capturing is None or int(trace_id) != self.capturing:
            raise RuntimeError(
                f"ttnn.end_trace_capture: trace {int(trace_id)} is not being captured"
            )
        self.traces[int(trace_id)] = self.capture_records
        self.capturing = None
        self.capture_records = []

    def execute(self, trace_id):
        """Replay every recorded launch of a trace on the current values of its inputs."""
        self.check_open("ttnn.execute_trace")
        if self.capturing is not None:
            raise RuntimeError("ttnn.execute_trace: cannot replay a trace during a capture")
        records = self.traces.get(int(trace_id))
        if records is None:
            raise RuntimeError(
                f"ttnn.execute_trace: trace {int(trace_id)} does not exist "
                "(never captured, or already released)"
            )
        # Tensors made inside the trace may be freed during capture: the trace reuses their
        # buffers. A tensor from outside must still be allocated, or the card reads freed memory.
        produced = {id(output) for record in records for output in record.outputs}
        for record in records:
            for tensor in record.inputs:
                if tensor is not None and id(tensor) not in produced and not tensor.allocated:
                    raise RuntimeError(
                        f"ttnn.execute_trace: trace {int(trace_id)} reads a tensor that was "
                        "deallocated after the capture; keep the trace's inputs, weights and "
                        "caches allocated until ttnn.release_trace"
                    )
        for record in records:
            results = run_kernel(record.kernel, record.inputs)
            if record.inplace_target is not None:
                target = record.inplace_target
                target.value = round_to_dtype(results[0], target.dtype, target.layout)
                continue
            for index, (output, result) in enumerate(zip(record.outputs, results)):
                value = round_to_dtype(result, output.dtype, output.layout)
                output.value = owned_value(value, record.inputs, record.outputs[:index])
                output.written_by_capture = False

    def release(self, trace_id):
        self.check_open("ttnn.release_trace")
        if self.traces.pop(int(trace_id), None) is None:
            raise RuntimeError(
                f"ttnn.release_trace: trace {int(trace_id)} does not exist "
                "(never captured, or already released)"
            )


def owned_value(value, inputs, outputs):
    """Return `value`, copied if it shares storage with an input or another output.

    Kernels of views (reshape, slice, to_layout) may return the input's storage, and in-place
    cache updates write into a tensor's storage, so a shared buffer would change both tensors.
    """
    pointer = value.untyped_storage().data_ptr()
    for tensor in list(inputs) + list(outputs):
        if tensor is not None and tensor.value.untyped_storage().data_ptr() == pointer:
            return value.clone()
    return value


def run_kernel(kernel, inputs):
    """Call `kernel` on the stored values of `inputs` and return its results as a list."""
    values = [None if t is None else t.value for t in inputs]
    with torch.no_grad():
        results = kernel(*values)
    if isinstance(results, torch.Tensor):
        return [results]
    return list(results)
