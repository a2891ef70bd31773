"""The distillation loop: DMD2 and DFD with two LoRA adapters on one frozen backbone.

One training step is one update (FastGen's count, the one the paper's step numbers use): every
student_update_freq-th step updates the student, the others the fake score (DMD2's two time-scale
rule). The student's input is, by default, a real clip noised to one of its own times (FastGen's Wan
recipe); in DFD that same clip is what the teacher scores with probability p (the
paired regime of docs/method.md). Checkpoints are atomic folders; a resumed run continues bit for bit.
Multi-process runs (`torchrun` or `accelerate launch -m engine distill ...`) go through accelerate's
Accelerator (DDP per adapter, engine/distill/distributed.py); every rank draws the whole global batch and
the same data-forcing coin (as the paper's reference repo does) and trains on its slice.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..config.distill import DistillConfig
from ..config.files import write_run_config
from ..generation.sampling import velocity
from ..models.base import BaseModel, base_dtype, load_base_model
from ..models.conditioning import check_task
from ..models.experts import check_experts_run
from ..models.lora import LoraMismatch, read_student_lora, wrong_base
from ..models.students import LORA_FILE
from . import losses
from .adapters import FAKE, STUDENT, Adapters, read_fake_score, save_student_lora
from .base_int8 import check_base_int8, quantize_blocks
from .block_swap import BlockSwap
from .checkpoints import latest_checkpoint, read_checkpoint, write_checkpoint
from .data import load_data
from .data_progress import DataProgress
from .distributed import ProcessGroup
from .previews import preview_condition, write_previews
from .rollout import Rollout
from .student_inputs import StudentInputs
from .tracking import Tracking, tracker_of


class TrainingDiverged(RuntimeError):
    """The loss stayed non-finite; the message names the last good checkpoint."""


class Callbacks:
    """How a run reports: the CLI prints a progress bar, the job runner writes to storage (where a cancel
    request raises from on_step)."""

    def on_step(self, step: int, total: int, terms: dict[str, float], it_per_s: float, eta_s: float) -> None: ...

    def on_checkpoint(self, step: int, path: Path) -> None: ...

    def on_artifact(self, kind: str, path: Path, label: str) -> None: ...

    def log(self, message: str) -> None: ...

    def on_data(self, done: int, total: int, eta_s: float | None) -> None:
        """The first pass over a data set: `done` of `total` videos decoded and encoded into the cache."""


class Distiller(StudentInputs):
    """Owns the networks, optimizers, data and randomness of one run. `cfg` is taken as built and validated
    (build_distill_config, or a job's config loaded by the runner): it is not checked again here."""

    def __init__(
        self,
        cfg: DistillConfig,
        out: Path,
        model: BaseModel | None = None,
        callbacks: Callbacks | None = None,
        lora_dir: Path | None = None,
        preflight=None,
    ):
        self.cfg = cfg
        self.out = Path(out)
        self.lora_dir = Path(lora_dir) if lora_dir else self.out  # where the finished student LoRA goes
        self.cb = callbacks or Callbacks()
        self.dist = ProcessGroup(tracker_of(cfg.log_with), str(self.out), shard_base=cfg.shard_base)
        if model is None and preflight is not None:  # refused before the base loads, not out of memory an hour in
            preflight(cfg, self.dist.device, self.dist.world, self.cb.log)  # engine.plan's, handed in from above
        torch.manual_seed(cfg.seed)
        self.model = model or load_base_model(
            cfg.base, device=self.dist.device, dtype=base_dtype(cfg.mixed_precision, self.dist.device)
        )
        check_task(cfg.task, self.model)  # an I2V run also gives every network its clip's first frame
        if self.model.experts:
            check_experts_run(cfg.task, cfg.t_list, self.dist.world, self.model.transformer.boundary_ratio, self.cb.log)
        self.model.tiled_encode = cfg.vae_tiling
        self.tracking = Tracking(self.dist.start(self.model.dtype), cfg.log_with)
        self.transformer = self.model.transformer
        if cfg.base_int8:  # before the adapters: peft wraps each quantized Linear in its torchao LoRA layer
            check_base_int8(self.dist.world)
            self.cb.log(f"base_int8: {quantize_blocks(self.transformer)} Linear layers of the blocks stored in int8")
        self.adapters = Adapters(self.transformer, rank=cfg.lora_rank)
        self.adapters.keep_float32()  # a bf16 base trains fp32 adapters (the optimizer's small steps need it)
        if cfg.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.init_note = None
        if cfg.init:
            try:
                self.adapters.load_state_dict(STUDENT, read_student_lora(Path(cfg.init)))
            except LoraMismatch as mismatch:
                raise wrong_base(cfg.init, cfg.base, str(mismatch)) from None
            fake = read_fake_score(Path(cfg.init))
            if fake is not None:  # continue with the fake score that tracked this student (DMD2's state)
                self.adapters.load_state_dict(FAKE, fake)
            self.init_note = f"student from {cfg.init}, fake score " + (
                "from the same run" if fake is not None else "from the teacher (none saved with the student)"
            )
            self.adapters.use(STUDENT)
        # After the init student: one made for another base is refused by its layer sizes, which says more than
        # a size the base cannot take; still before any data is encoded.
        if cfg.num_frames or cfg.height or cfg.width:
            self.model.set_video_shape(
                cfg.num_frames or self.model.num_frames, cfg.height or self.model.height, cfg.width or self.model.width
            )
        self.student_params = self.adapters.parameters(STUDENT)
        self.fake_params = self.adapters.parameters(FAKE)
        optimizers = self.dist.prepare(
            self.adapters,
            {
                STUDENT: _adamw(self.student_params, cfg.lr_student, cfg),
                FAKE: _adamw(self.fake_params, cfg.lr_fake, cfg),
            },
        )
        self.opt_student, self.opt_fake = optimizers[STUDENT], optimizers[FAKE]
        if cfg.block_swap:  # after the processes' modules are synced: only the frozen weights leave the device
            self.block_swap = BlockSwap(self.transformer, cfg.block_swap, self.model.device)
        self.uncond = self.model.encode_prompts([""])
        # Every rank draws the global batch from the same streams and keeps its slice (distributed.py). The
        # data encodes its captions first; then, every embedding the run needs being cached, the text
        # encoder's memory goes back before the clips are encoded (a handed-in model is its caller's).
        self.data = load_data(
            cfg.data,
            self.model,
            regime=cfg.caption_regime,
            seed=cfg.seed * 1000,
            pool_size=cfg.shapes_pool_clips,
            min_clips=cfg.batch_size,
            windows_per_video=cfg.windows_per_video,
            cache_dir=cfg.cache_dir,
            workers=cfg.data_workers,
            progress=DataProgress(self.cb.on_data) if hasattr(self.cb, "on_data") and self.dist.rank == 0 else None,
            text_done=self.model.release_text_encoder if model is None else None,
        )
        self.data_report = getattr(self.data, "report", None)  # a folder's windows, fps and skipped files
        if self.data_report is not None and self.dist.rank == 0:
            for line in self.data_report.lines():
                self.cb.log(line)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + 17)
        self.coin = np.random.default_rng(cfg.seed + 99)
        self.preview_prompts = list(dict.fromkeys(self.data.captions))[:2]
        self.preview_cond = self.data.prompt_embeddings(self.preview_prompts)
        self.preview_condition = preview_condition(self.model, self.data, cfg.task)
        self.step = 0
        self.bad_steps = 0
        self.last_checkpoint: int | None = None
        self.gap_reference = self._unrelated_clip_gap()
        self.recent_gaps: list[float] = []
        self.gap_checks = 0
        self.rollout = Rollout(self) if cfg.task == "ar" else None  # the causal student (engine/distill/rollout.py)

    # --- updates -----------------------------------------------------------------------------------
    def fake_update(self) -> float:
        def micro_batch():
            real = self._real_batch()
            with torch.no_grad(), self.autocast():
                x, _ = self._student_sample(real, grad=False)
            x = x.float()
            t = self._dmd_time(x.shape[0], x.device)
            eps = self.randn(x)
            self.adapters.use(FAKE)
            with self.autocast():
                v = velocity(self.dist.trained(FAKE), losses.add_noise(x, eps, t), t, real.cond, real.condition)
            return losses.fake_score_loss(v.float(), x, eps), None

        return self._update(FAKE, self.opt_fake, self.fake_params, micro_batch)[0]

    def student_update(self) -> dict[str, float]:
        # This update's data_forcing_prob after its schedule and, for the paper's per-step coin, that coin.
        draw = losses.DataForcing.of(self.cfg, self.step, self.coin)

        def micro_batch():
            real = self._real_batch()
            with self.autocast():
                x, t_student = self._student_sample(real, grad=True)
                x = x.float()
                t = self._dmd_time(x.shape[0], x.device)
                eps = self.randn(x)
                data_forcing = draw.weight(t, self.dist.shard(draw.uniforms(self.coin, x.shape[0] * self.dist.world)))
                terms = losses.generator_loss(
                    x,
                    real.latents,
                    eps,
                    t,
                    fake_x0=lambda x_t, tt: self._x0(FAKE, x_t, tt, real.cond, real.condition).float(),
                    teacher_x0=lambda x_t, tt: self._x0(None, x_t, tt, real.cond, real.condition).float(),
                    data_forcing=data_forcing,
                )
            self.adapters.use(STUDENT)  # the trap: the student's LoRA must require grad again before backward
            return terms.loss, (terms.real_gap.detach(), t_student, data_forcing)

        loss, logged = self._update(STUDENT, self.opt_student, self.student_params, micro_batch)
        # The logged terms are the global batch's: every process's rows, gathered.
        gap, t_student, data_forcing = (self.dist.gather(torch.cat(part)) for part in zip(*logged))
        # data_forcing_used: did any real clip pull on this update? Counted over the run, it says whether a
        # short run with a small data_forcing_prob forced towards real data at all.
        out = {
            "loss_student": loss,
            "data_forcing": float(data_forcing.mean()),
            "real_gap": float(gap.mean()),
            "data_forcing_used": float(bool((data_forcing > 0).any())),
        }
        for t_value in sorted(set(t_student.tolist()), reverse=True):
            out[f"real_gap@t{t_value:.3f}"] = float(gap[t_student == t_value].mean())
        return out

    def _update(self, name: str, optimizer, params, micro_batch) -> tuple[float, list]:
        """One optimizer step of adapter `name` over grad_accum micro-batches, each `micro_batch()` giving
        (loss, what to log). Each loss is divided by their number, so the step sees the mean gradient; DDP
        averages it over the processes in the last micro-batch's backward."""
        optimizer.zero_grad(set_to_none=True)
        values, logged = [], []
        for i in range(self.cfg.grad_accum):
            with self.dist.accumulating(name, last=i == self.cfg.grad_accum - 1):
                loss, log = micro_batch()
                values.append(self.dist.mean(loss.detach()))  # every rank sees the same value, takes the same branch
                logged.append(log)
                # Under DDP a forward is always followed by its backward (the reducer expects one), also on a
                # non-finite loss: that step is skipped below and its gradients dropped.
                if math.isfinite(values[-1]) or self.dist.world > 1:
                    self.dist.backward(loss / self.cfg.grad_accum if self.cfg.grad_accum > 1 else loss)
        value = values[0] if len(values) == 1 else float(np.mean(values))
        if not math.isfinite(value):
            optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
            if self.bad_steps >= self.cfg.nan_patience:
                last = f"step {self.last_checkpoint}" if self.last_checkpoint is not None else "none yet"
                raise TrainingDiverged(
                    f"the loss was {value} for {self.bad_steps} consecutive updates at step {self.step + 1}; "
                    f"the last good checkpoint is {last}: lower the learning rate and resume"
                )
            return value, logged
        self.bad_steps = 0
        self.dist.clip_grad_norm_(params, self.cfg.grad_clip)
        optimizer.step()
        return value, logged

    # --- the loop ------------------------------------------------------------------------------------
    def train(self) -> Path:
        """Run (or resume) to cfg.steps; returns the output folder with the student LoRA."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.dist.rank == 0:
            write_run_config(self.cfg, self.out)  # distill_config.json and run.yaml
            if self.data_report is not None:  # the windows' fps and frames, and every file left out
                (self.out / "data.json").write_text(json.dumps(self.data_report.to_dict(), indent=2) + "\n")
        self.tracking.start(self.cfg.to_dict())
        if self.init_note:
            self.cb.log(self.init_note)
        resumed = self.resume()
        if resumed is not None:
            self.cb.log(f"resumed from checkpoint step {resumed}")
        metrics_file = self.out / "metrics.jsonl"
        started, start_step = time.perf_counter(), self.step
        while self.step < self.cfg.steps:
            # Two time-scale updates, one per step: the fake score catches up for freq - 1 steps, then the
            # student moves (FastGen's schedule, so step counts mean what they mean in the paper).
            student_step = (self.step + 1) % self.cfg.student_update_freq == 0
            terms = self.student_update() if student_step else {"loss_fake": self.fake_update()}
            self.step += 1
            rate = (self.step - start_step) / max(time.perf_counter() - started, 1e-9)
            if self.dist.rank == 0:
                with open(metrics_file, "a") as f:
                    f.write(json.dumps({"step": self.step, **terms}) + "\n")
            self.tracking.log(terms, self.step)
            self.cb.on_step(self.step, self.cfg.steps, terms, rate, (self.cfg.steps - self.step) / max(rate, 1e-9))
            if student_step:
                self._watch_validity(terms["real_gap"])
            # No checkpoint right after a non-finite loss: the last one stays the last good one.
            if (self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps) and not self.bad_steps:
                self.save_checkpoint()
            if (
                self.cfg.preview_every
                and self.step % self.cfg.preview_every == 0
                and self.step < self.cfg.steps
                and self.dist.together
            ):
                self.write_previews()
        fingerprints = self.dist.fingerprints(self.student_params)
        if len(set(fingerprints)) != 1:
            raise RuntimeError(
                f"the {self.dist.world} processes ended with different students {fingerprints}; "
                "their gradients were not averaged"
            )
        if self.dist.rank == 0:
            (self.out / "summary.json").write_text(
                json.dumps(
                    {
                        "steps": self.step,
                        "processes": self.dist.world,
                        "base_sharded": self.dist.sharded,
                        "student_fingerprints": fingerprints,
                        "real_gap_reference": self.gap_reference,
                        "real_gap_last20": float(np.mean(self.recent_gaps)) if self.recent_gaps else None,
                    },
                    indent=2,
                )
                + "\n"
            )
            save_student_lora(
                self.adapters,
                self.lora_dir,
                extra={
                    "method": self.cfg.method,
                    "base": self.cfg.base,
                    "task": self.cfg.task,  # a lone LoRA folder says it
                    "steps": self.cfg.steps,
                    "t_list": self.cfg.t_list,
                    **(self.rollout.lora_info() if self.rollout else {}),
                },
            )
            self.cb.on_artifact("lora", self.lora_dir / LORA_FILE, f"{self.cfg.method} student")
        if self.dist.together:
            self.write_previews()
        self.dist.end()  # trackers closed; with several processes, the group left together
        return self.out

    def _watch_validity(self, gap: float) -> None:
        """Warn (every 20 student updates at most) when the student is far from its real clips: DFD's
        validity condition (paper Eq. 7) needs E||x_real - G||^2 small, and DMD2 should be bringing it down."""
        self.recent_gaps = (self.recent_gaps + [gap])[-20:]
        self.gap_checks += 1
        mean = float(np.mean(self.recent_gaps))
        if len(self.recent_gaps) == 20 and mean > 0.5 * self.gap_reference and self.gap_checks % 20 == 0:
            self.cb.log(
                f"warning: validity gap ||x_real - G||^2 = {mean:.3f} is over half that of unrelated clips "
                f"({self.gap_reference:.3f}); DFD's real-clip targets may average modes here "
                "(see docs/distillation.md: paired inputs and detailed captions keep it small)"
            )

    # --- previews ----------------------------------------------------------------------------------------
    def write_previews(self, seeds: tuple[int, ...] = (1, 2, 3, 4)) -> list[Path]:
        """Student samples of two training captions (the same seeds every time), as mp4 artifacts."""
        if self.rollout is not None:
            return self.rollout.write_previews(seeds)
        return write_previews(self, seeds)

    # --- checkpoints -----------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "step": self.step,
            "student": self.adapters.state_dict(STUDENT),
            "fake": self.adapters.state_dict(FAKE),
            "opt_student": self.opt_student.state_dict(),
            "opt_fake": self.opt_fake.state_dict(),
            "gen": self.gen.get_state(),
            "coin": self.coin.bit_generator.state,
            "data": self.data.state(),
        }

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step-N atomically (temp folder, then rename) and keep the two newest."""
        final = write_checkpoint(self.out, self.step, self._state()) if self.dist.rank == 0 else None
        self.last_checkpoint = self.step
        if final is not None:
            self.cb.on_checkpoint(self.step, final)
        self.dist.barrier()
        return final

    def resume(self) -> int | None:
        """Load the newest complete checkpoint in out/checkpoints, if any; returns its step."""
        latest = latest_checkpoint(self.out)
        if latest is None:
            return None
        state = read_checkpoint(latest)
        self.adapters.load_state_dict(STUDENT, state["student"])
        self.adapters.load_state_dict(FAKE, state["fake"])
        self.adapters.use(STUDENT)
        self.opt_student.load_state_dict(state["opt_student"])
        self.opt_fake.load_state_dict(state["opt_fake"])
        self.gen.set_state(state["gen"])
        self.coin.bit_generator.state = state["coin"]
        self.data.load_state(state["data"])
        self.step = self.last_checkpoint = int(state["step"])
        return self.step


def _adamw(params: list[torch.nn.Parameter], lr: float, cfg: DistillConfig) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel: on a GPU one launch updates every adapter tensor (hundreds of small
    LoRA matrices, one launch each otherwise). On CPU it is no faster or slower (docs/performance.md).
    The adapters stay fp32 on a bf16 base, which the kernel takes."""
    return torch.optim.AdamW(params, lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=True)
