"""cdcodec as a benchmarked codec: every operating point the format offers.

A progressive file holds all its stages; the k-stage prefix is itself a valid file.
So the benchmark encodes once per quality level and measures each prefix k = 1..K,
with the rate taken from the exact prefix bytes (`cdcodec.bitstream.truncate`) and
the reconstruction from decoding those bytes, never from the full file. The exact
modes (lossless, near-lossless with D = 1, 2) are two further sources, measured
on one lossy stage at the coarsest quality level, cdcodec's smallest exact files.
Each source names the shipped model it measures (None: the default model), so
the MS-SSIM model is one more curve beside the default MSE model.

A cdcodec sweep over Kodak takes hours on a small machine, longer than one
sitting; each source's description therefore carries a fingerprint of the code
and the model's weights that make its points (`build_fingerprint`), so that
`bench --reuse` takes over earlier cdcodec measurements exactly when nothing that
shapes them has changed, and a stopped run resumes in a later session.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import re
from importlib import metadata
from pathlib import Path

import numpy as np

from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS
from .points import Encoded, timed


def stage_setting(stages: int, quality: int | None = None) -> str:
    """The setting label of the k-stage prefix at one quality level."""
    return f"stages={stages}" if quality is None else f"q{quality} stages={stages}"


def _quality_levels(cdcodec, model: str | None = None) -> list[int | None]:
    """Every quality level the model offers ([None] for a cdcodec without levels)."""
    count = getattr(cdcodec, "quality_levels", None)
    return [None] if count is None else list(range(count(model)))


def cdcodec_points(image: np.ndarray, model: str | None = None, **encode_options):
    """For every quality level: encode `image` once with all stages, then yield each stage prefix.

    Every point carries its level's full encode time, since one encode makes all its prefixes.
    `encode_options` go to every encode (e.g. tune="psnr", as `cdcodec encode --tune psnr`).
    """
    cdcodec = importlib.import_module("cdcodec")
    bitstream = importlib.import_module("cdcodec.bitstream")
    for quality in _quality_levels(cdcodec, model):
        options = {"model": model, **encode_options, **({} if quality is None else {"quality": quality})}
        data, encode_s = timed(lambda: cdcodec.encode(image, **options))
        total = bitstream.unpack(data).stages_present
        for stages in range(1, total + 1):
            prefix = bitstream.truncate(data, stages)
            decoded, decode_s = timed(lambda: cdcodec.decode(prefix, model=model))
            yield Encoded(stage_setting(stages, quality), prefix, np.asarray(decoded), encode_s, decode_s)


def exact_points(image: np.ndarray, settings):
    """cdcodec's exact modes on one lossy stage at quality level 0 (its smallest exact files): "lossless" or a maximum error D."""
    cdcodec = importlib.import_module("cdcodec")
    for setting in settings:
        options = {"lossless": True} if setting == "lossless" else {"max_error": setting}
        data, encode_s = timed(lambda: cdcodec.encode(image, stages=1, quality=0, **options))
        decoded, decode_s = timed(lambda: cdcodec.decode(data))
        yield Encoded(setting, data, np.asarray(decoded), encode_s, decode_s)


def warm_up(model: str | None = None) -> None:
    """Encode and decode a small image once, untimed.

    cdcodec loads its weights on first use; without this the first image's encode
    time would include reading the model from disk.
    """
    cdcodec = importlib.import_module("cdcodec")
    rng = np.random.default_rng(0)
    cdcodec.decode(cdcodec.encode(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), model=model), model=model)


#: The installed packages whose versions can change what cdcodec writes or decodes.
BUILD_PACKAGES = ("torch", "numpy", "constriction", "pytorch-msssim")
#: The parts of cdcodec that make its points: the encode/decode pipeline, the format and the weights.
BUILD_MODULES = ("cdcodec", "cdcodec.codec", "cdcodec.bitstream", "cdcodec.trained")
#: Files of cdcodec.trained that belong to one model or list them all: a model's points
#: depend on its own weights and manifest record only (`build_fingerprint`).
PER_MODEL_FILE = re.compile(r".*\.safetensors|manifest\.json")
#: Files of cdcodec.codec that make new weights (training, table fitting): encode and
#: decode never import them (tests/test_bench.py checks), so they shape a model's points
#: only through its weights file, which the fingerprint hashes on its own.
TRAINING_FILE = re.compile(r"cdcodec\.codec/training/.*")
#: The nodes whose first statement can be a docstring (`normalised` drops it).
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def module_files(module: str) -> list[tuple[str, Path]] | None:
    """(name, path) of every file of one of cdcodec's packages, sorted; None when the
    package has no single folder (a stand-in module in tests)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a stand-in `cdcodec` without __path__ or __spec__
        return None
    folders = list(spec.submodule_search_locations or ()) if spec else []
    if len(folders) != 1:
        return None
    root = Path(folders[0])
    paths = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [(f"{module}/{path.relative_to(root).as_posix()}", path) for path in paths]


def is_per_model(name: str) -> bool:
    """A file of cdcodec.trained that belongs to one model or lists them all (weights, manifest)."""
    module, _, file = name.rpartition("/")
    return module == "cdcodec.trained" and PER_MODEL_FILE.fullmatch(file) is not None


def is_fingerprinted(name: str) -> bool:
    """Whether a file (named as `module_files` names it) is part of every model's fingerprint:
    cdcodec's code and format, not a model's own files, not the training code."""
    return not is_per_model(name) and TRAINING_FILE.fullmatch(name) is None


def normalised(name: str, data: bytes) -> bytes:
    """What of a file can shape cdcodec's output: a Python file's syntax tree without its
    docstrings (comments never reach the tree), any other file's bytes.

    So an edit to documentation alone keeps the fingerprint, and hours of measured
    points stay reusable; a Python file that does not parse is hashed as bytes.
    """
    if not name.endswith(".py"):
        return data
    try:
        tree = ast.parse(data)
    except SyntaxError:
        return data
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, DOCUMENTED) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def code_digest(files) -> bytes:
    """SHA-256 over (name, normalised content) of `files`, (name, bytes) pairs in a fixed order."""
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(f"{name}\0".encode())
        digest.update(hashlib.sha256(normalised(name, data)).digest())
    return digest.digest()


def package_versions() -> str:
    """The versions of BUILD_PACKAGES, as the fingerprint records them ("name==version\\0" each)."""
    versions = []
    for name in BUILD_PACKAGES:
        try:
            versions.append(f"{name}=={metadata.version(name)}\0")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}==absent\0")
    return "".join(versions)


@functools.lru_cache(maxsize=None)
def build_fingerprint(model: str | None = None) -> str | None:
    """SHA-256 over what makes one model's points (`model`, None for the default one):
    the code of cdcodec's top package, codec, bitstream and trained (`normalised`),
    less the training code (`is_fingerprinted`); the model's id, its weights file
    and the distortion its manifest record tells the encoder's search to weigh; and
    the versions of BUILD_PACKAGES. None when cdcodec's files or the model cannot be
    found (a stand-in module in tests).

    Any edit to that code, even one that leaves the output unchanged, gives a new
    fingerprint: reuse errs on the side of measuring again. Documentation and
    comments do not, and neither do training code, or shipping, retiring or
    re-documenting another model: the default model's hours of Kodak points stay
    reusable when a new model is trained or the second model changes.
    """
    files = []
    for module in BUILD_MODULES:
        found = module_files(module)
        if found is None:
            return None
        files += [(name, path.read_bytes()) for name, path in found if is_fingerprinted(name)]
    return model_fingerprint(files, model)


def model_fingerprint(files, model: str | None = None) -> str | None:
    """The fingerprint of `model`'s points when cdcodec's code is `files` ((name, bytes) pairs,
    in `module_files`' order): `build_fingerprint` of the checkout, and of the code of an
    earlier commit (`results/bench/refingerprint.py`). None when the model cannot be found."""
    try:
        weights = importlib.import_module("cdcodec.codec.weights")
    except ImportError:
        return None
    try:
        model_id = model or weights.default_model_id()
        weights_file = weights.shipped_file(model_id)  # checked against the manifest's sha256
    except weights.ModelNotFoundError:
        return None
    digest = hashlib.sha256(code_digest(files))
    digest.update(f"model={model_id}\0".encode())
    digest.update(hashlib.sha256(weights_file.read_bytes()).digest())
    digest.update(f"search ms-ssim share={weights.trained_ms_ssim_share(model_id)!r}\0".encode())
    digest.update(package_versions().encode())
    return digest.hexdigest()


class CdcodecSource:
    """Duck-types `codecs.Codec` for the runner: name, label, kind, availability, points."""

    def __init__(self, name: str, label: str, kind: str, settings=None, model: str | None = None, encode_options: dict | None = None) -> None:
        self.name, self.label, self.kind, self.settings = name, label, kind, tuple(settings or ())
        self.model = model
        self.encode_options = dict(encode_options or {})
        self.setting_name = "quality level and stages" if kind == LOSSY else "mode (1 lossy stage at quality 0 below)"
        self._params = {
            "library": "cdcodec",
            "points": "per quality level: encode once, decode each stage prefix"
            if kind == LOSSY
            else "encode --stages 1 --quality 0 with an exact final stage, decode all",
            "model": model or "default",
            **({"encode_options": self.encode_options} if self.encode_options else {}),
        }
        self._warm = False

    @property
    def params(self) -> dict:
        """The bench's record of this codec; its build fingerprint is what lets `--reuse`
        take over the measurements of an earlier run (hashed on first use, not on import)."""
        return {**self._params, "build": build_fingerprint(self.model)}

    def unavailable(self) -> str | None:
        """None when cdcodec can encode here; checks by encoding a small image (which also loads the model)."""
        try:
            cdcodec = importlib.import_module("cdcodec")
        except ImportError as error:  # pragma: no cover - the bench lives inside cdcodec
            return f"cdcodec not importable ({error})"
        missing = []
        for name in ("encode", "decode"):
            try:
                getattr(cdcodec, name)
            except (AttributeError, ImportError):  # cdcodec resolves these lazily, so a missing module shows here
                missing.append(f"cdcodec.{name}")
        if missing:
            return f"{' and '.join(missing)} not available yet"
        if not self._warm:
            try:
                warm_up(self.model)
            except Exception as error:  # e.g. no trained weights shipped yet: skip, do not fail every image
                return f"cannot encode yet: {type(error).__name__}: {error}"
            self._warm = True
        return None

    def points(self, image: np.ndarray):
        if not self._warm:
            warm_up(self.model)
            self._warm = True
        if self.kind == LOSSY:
            return cdcodec_points(image, self.model, **self.encode_options)
        return exact_points(image, self.settings)


CDCODEC = CdcodecSource("cdcodec", "cdcodec", LOSSY)
CDCODEC_LOSSLESS = CdcodecSource("cdcodec-lossless", "cdcodec lossless", LOSSLESS, ("lossless",))
CDCODEC_NEAR = CdcodecSource("cdcodec-near", "cdcodec near-lossless", NEAR_LOSSLESS, (1, 2))
#: The second shipped model, trained for MS-SSIM instead of squared error.
MS_SSIM_MODEL = "cdc-msssim-10"
CDCODEC_MSSSIM = CdcodecSource("cdcodec-msssim", "cdcodec, MS-SSIM model", LOSSY, model=MS_SSIM_MODEL)
#: The default model with the encoder's search weighing squared error alone (`encode --tune psnr`).
CDCODEC_PSNR = CdcodecSource("cdcodec-psnr", "cdcodec --tune psnr", LOSSY, encode_options={"tune": "psnr"})
#: As CDCODEC_PSNR with twice the search rounds (`encode --tune psnr --effort 8`): the
#: encoder's slowest setting for squared error, measured to show what effort buys.
CDCODEC_PSNR_EFFORT = CdcodecSource(
    "cdcodec-psnr-effort8", "cdcodec --tune psnr --effort 8", LOSSY, encode_options={"tune": "psnr", "search_rounds": 8}
)
