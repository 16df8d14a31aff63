"""``show``: print any stage of the pipeline."""

from __future__ import annotations


def show(obj, stage: str = "discrete", file=None) -> str:
    """Print (and return) a stage of the pipeline for ``obj``.

    ``obj`` is a NeuronModel (stages ``model``, ``discrete``), a LearningModel (its derived
    step and Jacobian; ``eligibility`` for the eligibility layout the compiler proves;
    ``tape`` for what compiled BPTT keeps from the forward pass), a
    Network (``ir``, ``source`` for the Numba source, ``cuda`` for the CUDA C source,
    ``plan`` for the CUDA launch plan, ``learning`` for its NetworkLearningModel: every
    population's step and every delivery with its derivatives), a NetworkLearningModel, a
    :class:`~snngen.BPTT` or :class:`~snngen.Online` (``learning``, the default, with an
    online rule's plan and eligibility layout, or ``source`` for its generated kernels), a
    Simulator or a compiled learning kernel (``source``), or an online learning state (its
    rule, layout and eligibility memory).
    """
    from .derive.network import NetworkLearningModel, derive_network
    from .derive.step import LearningModel
    from .integrate import discretise
    from .model import NeuronModel, SynapseModel
    from .runtime.network import Network
    from .runtime.simulator import Simulator
    from .train.network import BPTT
    from .train.online import OnlineState
    if isinstance(obj, NetworkLearningModel):
        text = str(obj)
    elif isinstance(obj, BPTT) and stage in ("learning", "discrete", "source"):
        text = obj.kernels.source if stage == "source" else str(obj.nlm)
        if stage != "source" and hasattr(obj, "plan"):  # sg.Online: the rule's plan too
            text += "\n" + str(obj.plan) + "".join(
                f"\n  eligibility of {k}: {v}" for k, v in obj.layout().items())
    elif isinstance(obj, Network) and stage == "learning":
        text = str(derive_network(obj))
    elif isinstance(obj, LearningModel) and stage == "eligibility":
        from .derive.online import eligibility_layout
        text = str(eligibility_layout(obj))
    elif isinstance(obj, LearningModel) and stage == "tape":
        from .derive.tape import describe_tape
        text = describe_tape(obj)
    elif isinstance(obj, LearningModel):
        text = str(obj)
    elif isinstance(obj, OnlineState):
        text = obj.describe()
    elif stage == "source" and hasattr(obj, "module") and hasattr(obj, "lm"):
        text = getattr(obj, "source", None) or obj.source_path.read_text()
    elif isinstance(obj, (NeuronModel, SynapseModel)) and stage == "model":
        text = repr(obj)
    elif isinstance(obj, NeuronModel) and stage == "discrete":
        text = str(discretise(obj))
    elif isinstance(obj, Network) and stage in ("cuda", "plan"):
        from .backends.cuda.render import describe, render
        from .ir.lower import lower
        source, plan = render(lower(obj).program)
        text = source if stage == "cuda" else describe(plan)
    elif isinstance(obj, Network) and stage in ("ir", "source", "discrete"):
        from .ir.lower import lower
        lowered = lower(obj)
        if stage == "discrete":
            text = "\n\n".join(str(d) for d in lowered.discrete.values())
        elif stage == "ir":
            text = str(lowered.program)
        else:
            from .backends.numba.render import render
            text = render(lowered.program, lowered.constants)
    elif isinstance(obj, Simulator) and stage == "source":
        text = getattr(obj.module, "SOURCE", None) or obj.source_path.read_text()
    else:
        from .errors import InvalidValueError, did_you_mean
        kinds = ((NeuronModel, ("model", "discrete")), (SynapseModel, ("model",)),
                 (Network, ("ir", "source", "discrete", "cuda", "plan", "learning")),
                 (BPTT, ("learning", "source")),
                 (Simulator, ("source",)))
        own = next((stages for kind, stages in kinds if isinstance(obj, kind)), ())
        mine = f"its stages: {', '.join(own)}" if own else "it is not a model, network, " \
            "simulator, learning model, learning kernel or online learning state"
        raise InvalidValueError(f"cannot show stage {stage!r} of a {type(obj).__name__} ("
                                f"{mine}).{did_you_mean(stage, own)} Stages: model, discrete "
                                "(models), eligibility, tape (learning models), ir, source, "
                                "cuda, plan (networks), source (simulators, learning kernels)")
    print(text, file=file)
    return text
