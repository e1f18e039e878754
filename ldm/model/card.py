"""The model card: a Hugging Face Hub `README.md` written beside `config.json` and
`model.safetensors` by `LDMPolicy.save_pretrained`, and loading by local folder or Hub id.

The card is rendered from typed facts: `TrainingFacts` (preset, parameters, envs and
libraries, the store's fingerprint: set by the trainer) and `EvalFacts` (the evaluation
summary: recorded by `ldm run` / `ldm eval` once known). Both travel in `config.json` under
"card", so a checkpoint re-saved or re-evaluated keeps them. The YAML front matter is written
by `huggingface_hub.ModelCardData` (library_name, tags, license, model-index in the Hub's
reinforcement-learning form), so the Hub shows the scores as it does for SB3 models.

Imports: ldm.errors, ldm.model.config, huggingface_hub (lazily); not torch, not the policy.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ldm.errors import ModelError
from ldm.model.config import PRESETS, LDMConfig

CARD_FILE = "README.md"
CHECKPOINT_FILES = ["config.json", "model.safetensors", CARD_FILE]
# owner/name with the Hub's allowed characters (a local path that does not exist looks the
# same; the local folder wins when it exists)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class TuningFacts:
    """What a fine-tuned model started from and was tuned on (set by `ldm finetune`)."""

    base: str
    """The checkpoint whose weights it started from."""
    envs: tuple[str, ...]
    """Env ids it was tuned on."""
    episodes: int | None
    """The first K reference episodes of each env (None: all of them)."""
    method: str
    """"full" (every parameter) or "lora" (adapters on the backbone, merged in)."""
    lora_rank: int | None = None
    lora_alpha: float | None = None
    base_envs: tuple[str, ...] = ()
    """Env ids the base checkpoint was trained on (from its card; empty if it has none)."""
    parts: tuple[str, ...] = ()
    """The parts taken from the base (`TrainConfig.init_parts`); empty: all of them."""


@dataclass(frozen=True)
class TrainingFacts:
    """What a model was trained on (set by the trainer, kept in config.json)."""

    preset: str
    """Preset name (`ldm model summary`), or "custom"."""
    envs: tuple[str, ...]
    """Env ids of the training data."""
    store: str
    """Path of the trajectory store when trained."""
    store_fingerprint: str
    """`ldm.data.fingerprint.store_fingerprint` of the store's curated runs."""
    steps: int
    """Optimizer steps of the run."""
    batch_size: int = 0
    """Windows per optimizer step."""
    window: int = 0
    """Transitions per window."""
    tuning: TuningFacts | None = None
    """Set when the run fine-tuned another checkpoint (the rest then describes that run)."""

    @property
    def libraries(self) -> tuple[str, ...]:
        return tuple(sorted({e.split("/", 1)[0] for e in self.envs}))


@dataclass(frozen=True)
class EnvScore:
    """One env's evaluation result, as shown on the card."""

    env_id: str
    mean_return: float | None
    std_return: float | None
    normalised_score: float | None


@dataclass(frozen=True)
class EvalFacts:
    """The evaluation summary (the paper's protocol), recorded once known."""

    headline: str
    protocol: str
    envs: tuple[EnvScore, ...] = field(default_factory=tuple)


def preset_name(config: LDMConfig) -> str:
    """The preset a config equals, ignoring `context` and training-only options; else custom."""
    loose = ("context", "dropout", "prev_action_dropout", "bin_jitter", "obs_encoder")
    mine = {k: v for k, v in config.to_dict().items() if k not in loose}
    for name, build in PRESETS.items():
        theirs = {k: v for k, v in build().to_dict().items() if k not in loose}
        if mine == theirs:
            return name
    return "custom"


def eval_facts(results: Any, headline: str) -> EvalFacts:
    """EvalFacts from an evaluation (an `ldm.eval.results.EvalResult`, read by its fields:
    the model sits before ldm.eval in the import order) and its headline."""
    import numpy as np

    cfg = results.config
    envs = []
    for e in results.envs:
        flat = [x for r in e.returns for x in r]
        envs.append(
            EnvScore(
                e.env_id, e.mean_return, float(np.std(flat)) if flat else None, e.normalised_score
            )
        )
    protocol = (
        f"{cfg.rollouts} rollouts x {cfg.episodes} episodes per env, "
        "context kept across a rollout's episodes, "
        + (
            f"deterministic actions ({cfg.decoding} of continuous dims)"
            if cfg.deterministic
            else "sampled actions"
        )
        + f", reset seeds from base seed {cfg.seed}"
    )
    return EvalFacts(headline, protocol, tuple(envs))


def facts_to_json(training: TrainingFacts | None, evaluation: EvalFacts | None) -> dict:
    return {
        "training": asdict(training) if training else None,
        "evaluation": asdict(evaluation) if evaluation else None,
    }


def facts_from_json(d: dict | None) -> tuple[TrainingFacts | None, EvalFacts | None]:
    d = d or {}
    t, e = d.get("training"), d.get("evaluation")
    training = None
    if t:
        u = t.get("tuning")
        tuning = (
            TuningFacts(
                **{
                    **u,
                    "envs": tuple(u["envs"]),
                    "base_envs": tuple(u["base_envs"]),
                    "parts": tuple(u.get("parts", ())),
                }
            )
            if u
            else None
        )
        training = TrainingFacts(**{**t, "envs": tuple(t["envs"]), "tuning": tuning})
    evaluation = (
        EvalFacts(e["headline"], e["protocol"], tuple(EnvScore(**s) for s in e["envs"]))
        if e
        else None
    )
    return training, evaluation


def _front_matter(name: str, training: TrainingFacts | None, evaluation: EvalFacts | None) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    results = [
        EvalResult(
            task_type="reinforcement-learning",
            task_name="reinforcement-learning",
            dataset_type=s.env_id,
            dataset_name=s.env_id.split("/", 1)[-1],
            metric_type="mean_reward",
            metric_name="mean_reward",
            metric_value=f"{s.mean_return:.2f} +/- {s.std_return or 0.0:.2f}",
        )
        for s in (evaluation.envs if evaluation else ())
        if s.mean_return is not None
    ]
    tags = ["reinforcement-learning", "large-decision-model", "ldm", "offline-rl"]
    tags += [f"env-library:{lib}" for lib in (training.libraries if training else ())]
    data = ModelCardData(
        library_name="ldm",
        license="apache-2.0",
        pipeline_tag="reinforcement-learning",
        tags=tags,
        model_name=name,
        eval_results=results or None,
    )
    return data.to_yaml()


#: the card's "How to use" section: loading, acting in a Gymnasium env, watching it
USAGE = (
    "",
    "## How to use",
    "",
    "```python",
    "import gymnasium as gym",
    "import ldm  # puts every catalogued env in Gymnasium's registry (library/EnvId)",
    "from ldm.model import LDMPolicy",
    "",
    'policy = LDMPolicy.from_pretrained("PATH_OR_HUB_ID")  # a folder, or owner/name on the Hub',
    'env = gym.make("classic-control/CartPole-v1")',
    "agent = policy.agent(env)  # the context runs across episodes, as in evaluation",
    "obs, _ = env.reset(seed=0)",
    "for _ in range(1000):",
    "    action, _ = agent.predict(obs)  # Stable-Baselines3's signature",
    "    obs, reward, terminated, truncated, _ = env.step(action)",
    "    agent.record(reward, terminated, truncated)  # optional: SB3 passes no rewards",
    "    if terminated or truncated:",
    "        obs, _ = env.reset()",
    "```",
    "",
    "`agent.get_next_action(obs, reward, terminated, truncated)` acts JAT's way (the "
    "previous action's outcome with the new observation); a vector env gives a batch of "
    "actions; `agent.reset()` starts a new rollout with an empty context.",
    "",
    "Or watch it act: `ldm play PATH_OR_HUB_ID ENV_ID --video clip.mp4`.",
    "",
)


def render_card(
    config: LDMConfig,
    num_params: int,
    training: TrainingFacts | None,
    evaluation: EvalFacts | None,
    ldm_version: str,
) -> str:
    """The README.md text (YAML front matter + Markdown)."""
    name = training.preset if training else preset_name(config)
    lines = [
        "---",
        _front_matter(name, training, evaluation).rstrip(),
        "---",
        "",
        f"# LDM policy ({name}, {num_params / 1e6:.1f}M parameters)",
        "",
        "One transformer policy (a Llama backbone over one token per transition) trained "
        "offline by next-action prediction on reference-policy trajectories of many "
        f"environments, with `ldm` {ldm_version}.",
        "",
        "## Model",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| preset | {name} |",
        f"| parameters | {num_params:,} |",
    ]
    lines += [f"| {k} | {v} |" for k, v in config.to_dict().items()]
    lines += ["", "## Training data", ""]
    if training:
        lines += [
            f"- store: `{training.store}` (fingerprint `{training.store_fingerprint}`)",
            f"- {training.steps} optimizer steps of {training.batch_size} windows x "
            f"{training.window} transitions",
            f"- {len(training.libraries)} libraries: {', '.join(training.libraries)}",
            f"- {len(training.envs)} environments:",
        ]
        lines += [f"  - `{e}`" for e in training.envs]
    else:
        lines += ["Not recorded (the model was saved outside `ldm train`)."]
    if training and training.tuning:
        lines += ["", *_tuning_lines(training.tuning)]
    lines += ["", "## Evaluation", ""]
    if evaluation:
        lines += [
            f"**{evaluation.headline}** (protocol: {evaluation.protocol}; score = % of the "
            "reference: 100 x (R - first10) / (last10 - first10)).",
            "",
            "| env | score (% of reference) | mean return |",
            "| --- | ---: | ---: |",
        ]
        for s in evaluation.envs:
            score = "-" if s.normalised_score is None else f"{s.normalised_score:.0f}"
            ret = "-" if s.mean_return is None else f"{s.mean_return:.4g}"
            lines.append(f"| {s.env_id} | {score} | {ret} |")
    else:
        lines += ["Not evaluated yet (`ldm eval CHECKPOINT --store STORE` records it here)."]
    lines += USAGE
    return "\n".join(lines)


def _tuning_lines(tuning: TuningFacts) -> list[str]:
    """The card's fine-tuning section."""
    method = (
        f"LoRA (rank {tuning.lora_rank}, alpha {tuning.lora_alpha:g}) on the backbone's "
        "attention and MLP projections, merged into the weights"
        if tuning.method == "lora"
        else "full (every parameter)"
    ) + (f" ({'+'.join(tuning.parts)} from the base, the rest new)" if tuning.parts else "")
    data = "all" if tuning.episodes is None else f"the first {tuning.episodes}"
    base = f"`{tuning.base}`" + (
        f" (trained on {len(tuning.base_envs)} environments)" if tuning.base_envs else ""
    )
    lines = [
        "## Fine-tuning",
        "",
        f"- fine-tuned from {base}",
        f"- method: {method}",
        f"- data: {data} reference episodes of each of {len(tuning.envs)} environments:",
    ]
    return lines + [f"  - `{e}`" for e in tuning.envs]


def record_evaluation(directory: str | Path, results: Any, headline: str) -> Path | None:
    """Add an evaluation summary to a saved model's config.json and re-render its card.

    An evaluation of fewer envs than the card already reports (`ldm eval --envs X` to look at
    one env) leaves the card as it is and returns None: the card keeps its whole picture."""
    d = Path(directory)
    meta_path = d / "config.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise ModelError(f"{d} is not a readable LDM checkpoint ({e})") from None
    training, before = facts_from_json(meta.get("card"))
    evaluation = eval_facts(results, headline)
    if before is not None and len(evaluation.envs) < len(before.envs):
        return None
    meta["card"] = facts_to_json(training, evaluation)
    config = LDMConfig.from_dict(meta["config"])
    num_params = int(meta.get("num_params", 0))
    _write_atomic(meta_path, json.dumps(meta, indent=1))
    _write_atomic(
        d / CARD_FILE,
        render_card(config, num_params, training, evaluation, meta.get("ldm_version", "?")),
    )
    return d / CARD_FILE


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A local checkpoint folder, or a Hub id (`owner/name`) downloaded into the Hub cache.

    Offline (HF_HUB_OFFLINE=1 or no network) a Hub id is served from the cache; when it is not
    cached the error says so and how to fetch it."""
    p = Path(name_or_path)
    if p.exists() or not HUB_ID.match(str(name_or_path)):
        return p
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(name_or_path), allow_patterns=CHECKPOINT_FILES))
    except Exception as e:
        raise ModelError(
            f"{name_or_path!r} is not a local folder, and the Hugging Face Hub model of that id "
            f"could not be fetched or found in the cache ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Pass a folder written by "
            "save_pretrained, or, when online, download it first: "
            f"`hf download {name_or_path}`"
        ) from None
