"""Optimizers, clipping and schedules: PyTorch as the oracle, state round trips, errors."""

import math
import warnings

import numpy as np
import pytest

from conftest import rel_err
from rnnkit import optim as O
from rnnkit.module import Module

SHAPES = {"rnn.weight_hh_l0": (7, 5), "rnn.bias_ih_l0": (5,), "head.weight": (3, 4, 2)}
LR = {"sgd": 0.05, "rmsprop": 0.01, "adam": 0.01, "adamw": 0.01, "adagrad": 0.1}

# every optimizer with its main option combinations (torch keyword names)
CONFIGS = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("sgd", {"weight_decay": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-6}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.01}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.05}),
    ("adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "amsgrad": True}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.1, "amsgrad": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.01}),
    ("adagrad", {"initial_accumulator_value": 0.1, "weight_decay": 0.01, "eps": 1e-6}),
]


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}


def grad_sequence(steps, dtype, seed=1):
    """Random gradients whose scale changes from step to step (exercises the averages)."""
    rng = np.random.default_rng(seed)
    return [{k: (rng.normal(size=s) * (0.1, 1.0, 5.0)[t % 3]).astype(dtype) for k, s in SHAPES.items()}
            for t in range(steps)]



def torch_optimizer(torch, name, tensors, lr, kw):
    cls = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
           "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad}[name]
    return cls(tensors, lr=lr, foreach=False, **kw)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float64, 1e-13)], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{'-'.join(map(str, k)) or 'default'}" for n, k in CONFIGS])
def test_matches_torch_optim_over_20_steps(name, kw, dtype, tol, record_property):
    torch = pytest.importorskip("torch")
    params = make_params(dtype)
    live = dict(params)                      # the arrays must be updated in place
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = O.make_optimizer(name, params, lr=LR[name], **kw)
    topt = torch_optimizer(torch, name, list(tensors.values()), LR[name], kw)
    worst = 0.0
    for grads in grad_sequence(20, dtype):
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        opt.step(grads)
        topt.step()
        for k in params:
            assert params[k] is live[k] and params[k].dtype == dtype
            worst = max(worst, rel_err(params[k], tensors[k].detach().numpy()))
    # the buffers too (our names are torch's state names)
    for k, t in tensors.items():
        tstate = topt.state[t]
        for buf, per in opt.state.items():
            worst = max(worst, rel_err(per[k], tstate[buf].numpy()))
        if "step" in tstate:                 # SGD keeps no step count
            assert int(tstate["step"]) == opt.step_count == 20
    record_property("worst_rel_err", worst)
    print(f"{name} {kw} {np.dtype(dtype).name}: worst relative error {worst:.2e}")
    assert worst < tol


# -- dtype and in-place contract -----------------------------------------------------

@pytest.mark.parametrize("name", list(O.DEFAULT_LR))
def test_dtype_preserved_and_updates_in_place(name):
    params = make_params(np.float32)
    ids = {k: id(v) for k, v in params.items()}
    before = {k: v.copy() for k, v in params.items()}
    opt = O.make_optimizer(name, params)
    grads64 = {k: g.astype(np.float64) for k, g in grad_sequence(1, np.float32)[0].items()}
    opt.step(grads64)                        # float64 gradients are cast, not promoted
    for k, v in params.items():
        assert id(v) == ids[k] and v.dtype == np.float32
        assert not np.array_equal(v, before[k])
    for per in opt.state.values():
        assert all(a.dtype == np.float32 for a in per.values())
    assert opt.step_count == 1 and opt.lr == O.DEFAULT_LR[name]


def test_lr_is_settable_and_scales_the_sgd_step():
    p = {"w": np.ones(3)}
    opt = O.SGD(p, lr=0.1)
    opt.step({"w": np.full(3, 2.0)})
    np.testing.assert_allclose(p["w"], 0.8)
    opt.lr = 0.5
    opt.step({"w": np.full(3, 2.0)})
    np.testing.assert_allclose(p["w"], -0.2)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.lr = -1
    with pytest.raises(TypeError, match="lr must be a number"):
        opt.lr = "fast"


@pytest.mark.parametrize("name", list(O.DEFAULT_LR))
def test_every_optimizer_minimises_a_quadratic(name):
    rng = np.random.default_rng(3)
    c = rng.normal(size=(4, 3))
    p = {"w": np.zeros((4, 3))}
    opt = O.make_optimizer(name, p, lr={"sgd": 0.1, "rmsprop": 0.03, "adam": 0.05, "adamw": 0.05,
                                         "adagrad": 0.5}[name], **({"weight_decay": 0.0} if name == "adamw" else {}))
    start = float(np.sum(c ** 2))
    for _ in range(300):
        opt.step({"w": 2 * (p["w"] - c)})
    assert float(np.sum((p["w"] - c) ** 2)) < 1e-3 * start


# -- state dicts -------------------------------------------------------------------------

class Toy(Module):
    def __init__(self, dtype=np.float32):
        super().__init__()
        for k, v in make_params(dtype, seed=5).items():
            self.register(k.replace(".", "_"), v)


def run_steps(model, opt, sched, grads_seq):
    for i, g in enumerate(grads_seq):
        grads = model.grads
        for k, v in zip(grads, g.values()):
            grads[k][...] = v
        opt.step(grads)
        sched.step(metric=float(10 - i % 4) if isinstance(sched, O.ReduceLROnPlateau)
                   or isinstance(getattr(sched, "after", None), O.ReduceLROnPlateau) else None)


SAVE_CONFIGS = [c for c in CONFIGS if c[1]] + [("adam", {})]


@pytest.mark.parametrize("name,kw", SAVE_CONFIGS,
                         ids=[f"{n}-{'-'.join(map(str, k)) or 'default'}" for n, k in SAVE_CONFIGS])
@pytest.mark.parametrize("schedule", ["cosine", "plateau-warmup"])
def test_save_load_continue_equals_uninterrupted(tmp_path, name, kw, schedule):
    seq = grad_sequence(12, np.float32, seed=9)

    def build():
        model = Toy()
        opt = O.make_optimizer(name, model.params, lr=LR[name], **kw)
        if schedule == "cosine":
            sched = O.make_schedule("cosine", opt, T_max=8, eta_min=1e-4)
        else:
            sched = O.make_schedule("plateau", opt, warmup_steps=3, patience=1, factor=0.5)
        return model, opt, sched

    model_a, opt_a, sched_a = build()
    run_steps(model_a, opt_a, sched_a, seq)

    model_b, opt_b, sched_b = build()
    run_steps(model_b, opt_b, sched_b, seq[:5])
    arrays = {f"model/{k}": v for k, v in model_b.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in opt_b.state_dict().items()})
    arrays.update({f"sched/{k}": v for k, v in sched_b.state_dict().items()})
    np.savez(tmp_path / "ckpt.npz", **arrays)

    model_c, opt_c, sched_c = build()        # a fresh process would start here
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        part = {p: {k[len(p) + 1:]: f[k] for k in f.files if k.startswith(p + "/")}
                for p in ("model", "optim", "sched")}
    model_c.load_state_dict(part["model"])
    opt_c.load_state_dict(part["optim"])
    sched_c.load_state_dict(part["sched"])
    run_steps(model_c, opt_c, sched_c, seq[5:])

    for k, v in model_a.params.items():
        assert model_c.params[k].dtype == np.float32
        np.testing.assert_array_equal(model_c.params[k], v, err_msg=k)
    sa, sc = opt_a.state_dict(), opt_c.state_dict()
    assert sa.keys() == sc.keys()
    for k in sa:
        np.testing.assert_array_equal(sc[k], sa[k], err_msg=k)
    assert opt_c.lr == opt_a.lr and opt_c.step_count == 12
    assert {k: float(v) for k, v in sched_c.state_dict().items()} == \
        {k: float(v) for k, v in sched_a.state_dict().items()}


def test_state_dict_layout_is_numeric_and_npz_safe():
    params = make_params(np.float64)
    opt = O.Adam(params, lr=0.01, amsgrad=True)
    opt.step(grad_sequence(1, np.float64)[0])
    sd = opt.state_dict()
    assert sd["step"].shape == () and sd["step"] == 1 and sd["amsgrad"] == 1
    assert float(sd["lr"]) == 0.01 and float(sd["beta2"]) == 0.999
    for buf in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        for k, v in params.items():
            assert sd[f"{buf}/{k}"].shape == v.shape
    assert all(isinstance(v, np.ndarray) and v.dtype.kind in "iuf" for v in sd.values())
    # copies, not the live buffers
    sd["exp_avg/head.weight"][...] = 99
    assert not np.any(opt.state["exp_avg"]["head.weight"] == 99)
    # hyperparameters come back with the state
    other = O.Adam(make_params(np.float64), lr=0.5, betas=(0.5, 0.6), amsgrad=True)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.01 and other.betas == (0.9, 0.999) and other.step_count == 1
    assert O.SGD(make_params(np.float64)).state_dict().keys() == {"step", "lr", "momentum", "dampening",
                                                                  "weight_decay", "nesterov"}


def test_load_state_dict_errors_leave_the_optimizer_unchanged():
    params = make_params(np.float32)
    opt = O.Adam(params, lr=0.01)
    opt.step(grad_sequence(1, np.float32)[0])
    good = opt.state_dict()
    snapshot = {k: v.copy() for k, v in good.items()}

    missing = dict(good)
    del missing["exp_avg/head.weight"]
    with pytest.raises(KeyError, match=r"missing keys \['exp_avg/head.weight'\]"):
        opt.load_state_dict(missing)
    extra = dict(good, **{"momentum_buffer/x": np.zeros(2)})
    with pytest.raises(KeyError, match="unexpected keys"):
        opt.load_state_dict(extra)
    bad_shape = dict(good, **{"exp_avg_sq/rnn.bias_ih_l0": np.zeros(6)})
    with pytest.raises(ValueError, match=r"exp_avg_sq/rnn.bias_ih_l0 has shape \(6,\), expected \(5,\)"):
        opt.load_state_dict(bad_shape)
    ams = O.Adam(make_params(np.float32), amsgrad=True)
    with pytest.raises(KeyError, match="missing keys.*max_exp_avg_sq"):
        ams.load_state_dict(good)
    flag = dict(good, amsgrad=np.array(1))
    with pytest.raises(ValueError, match="amsgrad=True but this optimizer has amsgrad=False"):
        opt.load_state_dict(flag)
    bad_beta = dict(good, beta1=np.array(1.5), lr=np.array(9.0))
    with pytest.raises(ValueError, match=r"beta1 must lie in \[0, 1\), got 1.5"):
        opt.load_state_dict(bad_beta)
    sgd = O.SGD(make_params(np.float32), momentum=0.9)
    sd = sgd.state_dict()
    with pytest.raises(ValueError, match="need buffers"):
        sgd.load_state_dict(dict(sd, momentum=np.array(0.0)))
    assert sgd.momentum == 0.9
    now = opt.state_dict()
    for k in snapshot:
        np.testing.assert_array_equal(now[k], snapshot[k], err_msg=k)
    assert opt.beta1 == 0.9 and opt.lr == 0.01


# -- argument errors and the factory -----------------------------------------------------

def test_step_and_constructor_errors():
    params = make_params(np.float32)
    opt = O.SGD(params)
    grads = grad_sequence(1, np.float32)[0]
    with pytest.raises(KeyError, match=r"missing keys \['head.weight'\]"):
        opt.step({k: v for k, v in grads.items() if k != "head.weight"})
    with pytest.raises(ValueError, match=r"'head.weight' has shape \(3, 4\), expected \(3, 4, 2\)"):
        opt.step(dict(grads, **{"head.weight": np.zeros((3, 4), np.float32)}))
    with pytest.raises(TypeError, match="must hold floats"):
        opt.step(dict(grads, **{"head.weight": np.zeros((3, 4, 2), int)}))
    with pytest.raises(TypeError, match="grads must be a dict"):
        opt.step(list(grads.values()))
    assert opt.step_count == 0
    with pytest.raises(TypeError, match="base class"):
        O.Optimizer(params, 0.1)
    with pytest.raises(TypeError, match="params must be a dict"):
        O.Adam(list(params.values()))
    with pytest.raises(ValueError, match="params is empty"):
        O.Adam({})
    with pytest.raises(TypeError, match="'w' must be float32 or float64"):
        O.Adam({"w": np.zeros(3, dtype=int)})
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        O.SGD(params, nesterov=True)
    with pytest.raises(ValueError, match="betas must be a pair"):
        O.Adam(params, betas=0.9)
    with pytest.raises(ValueError, match=r"beta2 must lie in \[0, 1\)"):
        O.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        O.RMSprop(params, alpha=1.5)
    with pytest.raises(ValueError, match="lr must be finite"):
        O.Adagrad(params, lr=float("nan"))
    assert "Adam(lr=0.002" in repr(O.Adam(params))


def test_make_optimizer_defaults_names_and_errors():
    params = make_params(np.float32)
    for name, cls in [("sgd", O.SGD), ("RMSprop", O.RMSprop), ("adam", O.Adam), ("AdamW", O.AdamW),
                      ("adagrad", O.Adagrad)]:
        opt = O.make_optimizer(name, params)
        assert type(opt) is cls and opt.lr == O.DEFAULT_LR[name.lower()]
    assert O.DEFAULT_LR["adam"] == 2e-3 and O.DEFAULT_LR["sgd"] == 0.1 and O.DEFAULT_LR["rmsprop"] == 1e-3
    opt = O.make_optimizer("adamw", params, lr=0.3, weight_decay=0.5, betas=(0.7, 0.8))
    assert opt.lr == 0.3 and opt.weight_decay == 0.5 and opt.betas == (0.7, 0.8)
    assert O.AdamW(params).weight_decay == 1e-2 and O.Adam(params).weight_decay == 0.0
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'.*sgd, rmsprop, adam, adamw, adagrad"):
        O.make_optimizer("lbfgs", params)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['momentum'\].*betas"):
        O.make_optimizer("adam", params, momentum=0.9)


# -- clipping ------------------------------------------------------------------------

@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    grads = grad_sequence(2, np.float32)[1]
    tensors = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g.copy())
    before = {k: g.copy() for k, g in grads.items()}
    total = O.clip_grad_norm(grads, max_norm)
    ref = torch.nn.utils.clip_grad_norm_(tensors, max_norm, foreach=False)
    assert isinstance(total, float)
    assert total == pytest.approx(ref.item(), rel=1e-6)
    for t, (k, g) in zip(tensors, grads.items()):
        assert g.dtype == np.float32
        assert rel_err(g, t.grad.numpy()) < 1e-6
    new_total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    if max_norm < total:
        assert new_total == pytest.approx(max_norm, rel=1e-5)
    else:
        for k in grads:
            np.testing.assert_array_equal(grads[k], before[k])


def test_clip_grad_norm_non_finite_is_returned_and_nothing_scaled():
    grads = {"a": np.array([3.0, 4.0]), "b": np.array([np.inf, 1.0])}
    before = {k: g.copy() for k, g in grads.items()}
    assert O.clip_grad_norm(grads, 1.0) == math.inf
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])
    grads["b"][0] = np.nan
    assert math.isnan(O.clip_grad_norm(grads, 1.0))
    np.testing.assert_array_equal(grads["a"], [3.0, 4.0])
    # float32 gradients whose squares overflow float32 still give a finite norm
    big = {"w": np.full(4, 1e30, dtype=np.float32)}
    assert O.clip_grad_norm(big, 1.0) == pytest.approx(2e30, rel=1e-6)
    np.testing.assert_allclose(big["w"], 0.5, rtol=1e-5)
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        O.clip_grad_norm(grads, 0)


def test_clip_grad_value_and_grad_norms():
    torch = pytest.importorskip("torch")
    grads = grad_sequence(3, np.float64)[2]
    tensors = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g.copy())
    norms = O.grad_norms(grads)
    assert norms.keys() == grads.keys()
    for t, (k, g) in zip(tensors, grads.items()):
        assert norms[k] == pytest.approx(float(t.grad.norm()), rel=1e-12)
    assert O.clip_grad_value(grads, 0.7) is None
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    for t, g in zip(tensors, grads.values()):
        np.testing.assert_array_equal(g, t.grad.numpy())
        assert np.abs(g).max() == 0.7
    with pytest.raises(ValueError, match="clip_value must be > 0"):
        O.clip_grad_value(grads, -1)
    with pytest.raises(TypeError, match="'w' must be a float numpy array"):
        O.grad_norms({"w": [1, 2]})


# -- schedules ---------------------------------------------------------------------------

def torch_opt(torch, lr):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lrs_of(sched, opt, n, metrics=None):
    out = [opt.lr]
    for i in range(n):
        sched.step(None if metrics is None else metrics[i])
        out.append(opt.lr)
    return out


def torch_lrs(topt, tsched, n, metrics=None):
    out = [topt.param_groups[0]["lr"]]
    for i in range(n):
        topt.step()
        tsched.step() if metrics is None else tsched.step(metrics[i])
        out.append(topt.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("kind", ["step", "exponential", "cosine"])
def test_closed_form_schedules_match_torch(kind):
    torch = pytest.importorskip("torch")
    S = torch.optim.lr_scheduler
    opt = O.SGD({"w": np.zeros(1)}, lr=0.3)
    topt = torch_opt(torch, 0.3)
    if kind == "step":
        sched, tsched, n = O.StepLR(opt, step_size=3, gamma=0.5), S.StepLR(topt, 3, gamma=0.5), 20
    elif kind == "exponential":
        sched, tsched, n = O.ExponentialLR(opt, gamma=0.9), S.ExponentialLR(topt, gamma=0.9), 20
    else:
        sched, tsched, n = (O.CosineAnnealing(opt, T_max=10, eta_min=0.01),
                            S.CosineAnnealingLR(topt, T_max=10, eta_min=0.01), 10)
    ours, ref = lrs_of(sched, opt, n), torch_lrs(topt, tsched, n)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert ours[-1] < ours[0]
    if kind == "cosine":                      # after T_max the lr holds at eta_min
        assert lrs_of(sched, opt, 5)[1:] == [0.01] * 5


METRICS = [5, 4, 4, 4.0001, 4, 4, 4, 3, 3.9999, 3.99999, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]


@pytest.mark.parametrize("kw", [
    {},
    {"patience": 2, "factor": 0.5},
    {"patience": 1, "factor": 0.5, "cooldown": 2, "min_lr": 0.02},
    {"mode": "max", "patience": 1, "threshold": 0.01, "threshold_mode": "abs"},
    {"mode": "min", "patience": 0, "threshold": 0.1, "threshold_mode": "rel", "factor": 0.3},
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_reduce_on_plateau_matches_torch(kw):
    torch = pytest.importorskip("torch")
    opt = O.SGD({"w": np.zeros(1)}, lr=0.3)
    topt = torch_opt(torch, 0.3)
    sched = O.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    metrics = METRICS if kw.get("mode") != "max" else [-m for m in METRICS]
    ours, ref = lrs_of(sched, opt, len(metrics), metrics), torch_lrs(topt, tsched, len(metrics), metrics)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    if kw:
        assert ours[-1] < ours[0]
    assert sched.best == tsched.best and sched.num_bad_steps == tsched.num_bad_epochs


@pytest.mark.parametrize("after", ["step", "cosine", None])
def test_linear_warmup_matches_torch_linear_then_sequential(after):
    torch = pytest.importorskip("torch")
    S = torch.optim.lr_scheduler
    opt = O.SGD({"w": np.zeros(1)}, lr=0.2)
    topt = torch_opt(torch, 0.2)
    W = 4
    if after is None:
        sched = O.make_schedule("constant", opt, warmup_steps=W, warmup_start_factor=0.1)
        tsched = S.LinearLR(topt, start_factor=0.1, total_iters=W)
    else:
        inner = O.make_schedule(after, opt, **({"step_size": 3, "gamma": 0.5} if after == "step"
                                               else {"T_max": 8, "eta_min": 0.01}))
        sched = O.LinearWarmup(opt, W, after=inner, start_factor=0.1)
        warm = S.LinearLR(topt, start_factor=0.1, total_iters=W)
        tafter = S.StepLR(topt, 3, gamma=0.5) if after == "step" else S.CosineAnnealingLR(topt, 8, eta_min=0.01)
        tsched = S.SequentialLR(topt, [warm, tafter], milestones=[W])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, ref = lrs_of(sched, opt, 12), torch_lrs(topt, tsched, 12)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert ours[0] == pytest.approx(0.02) and ours[W] == 0.2


def test_warmup_then_plateau_and_make_schedule_errors():
    opt = O.Adam({"w": np.zeros(2)}, lr=0.1)
    sched = O.make_schedule("plateau", opt, warmup_steps=2, patience=0, factor=0.5)
    assert isinstance(sched, O.LinearWarmup) and isinstance(sched.after, O.ReduceLROnPlateau)
    assert opt.lr == 0.0                       # warmup starts from start_factor 0
    lrs = lrs_of(sched, opt, 5, [9, 9, 1, 2, 3])   # metrics ignored while warming up
    np.testing.assert_allclose(lrs, [0.0, 0.05, 0.1, 0.1, 0.05, 0.025])
    assert sched.state_dict()["after/num_bad_steps"] == 0
    with pytest.raises(ValueError, match="needs the monitored metric"):
        sched.step()
    with pytest.raises(ValueError, match="unknown schedule 'onecycle'.*constant, step"):
        O.make_schedule("onecycle", opt)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['gamma'\].*T_max, eta_min"):
        O.make_schedule("cosine", opt, T_max=3, gamma=0.1)
    with pytest.raises(TypeError, match=r"missing required option\(s\) \['step_size'\]"):
        O.make_schedule("step", opt)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['T_max'\]"):
        O.make_schedule("constant", opt, T_max=3)
    with pytest.raises(ValueError, match="step_size must be >= 1"):
        O.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        O.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(TypeError, match="opt must be an rnnkit Optimizer"):
        O.ExponentialLR("adam", gamma=0.5)
    with pytest.raises(TypeError, match="base class"):
        O.LRSchedule(opt)
    other = O.SGD({"v": np.zeros(1)})
    with pytest.raises(ValueError, match="same optimizer"):
        O.LinearWarmup(opt, 3, after=O.ExponentialLR(other, gamma=0.5))
    exp = O.ExponentialLR(opt, gamma=0.5)
    with pytest.raises(KeyError, match=r"missing keys \['base_lr'\]"):
        exp.load_state_dict({"step": np.array(1), "lr": np.array(0.1)})


def test_schedule_state_round_trip():
    opt = O.SGD({"w": np.zeros(1)}, lr=0.4)
    sched = O.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    lrs_of(sched, opt, 6, [3, 3, 3, 3, 2, 2])
    sd = sched.state_dict()
    assert all(isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iuf" for v in sd.values())
    opt2 = O.SGD({"w": np.zeros(1)}, lr=0.4)
    sched2 = O.ReduceLROnPlateau(opt2, patience=1, cooldown=1)
    sched2.load_state_dict(sd)
    assert opt2.lr == opt.lr == pytest.approx(0.04) and sched2.best == 2.0
    rest = [2, 2, 2, 1, 1, 1]
    assert lrs_of(sched2, opt2, 6, rest) == lrs_of(sched, opt, 6, rest)
