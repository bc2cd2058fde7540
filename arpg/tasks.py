"""Zero-shot editing with ARPG: inpainting, class-conditional editing, outpainting and
resolution change.

ARPG has no positional parameters and its queries carry their target cell, so any set
of known tokens, anywhere on any grid, can be context: the known cells are prefilled
and only the others are decoded (see :func:`arpg.sampling.generate`).

Input policy (one place, used by the UI and the CLI through :func:`prepare_image`):
* any PIL mode is converted to RGB (transparent pixels are put on white);
* the image is scaled so its height is the model's native height (grid rows x tokenizer
  factor, 64 px for the shipped model) and its width the nearest multiple of the factor
  (aspect ratio kept, at most ``MAX_ASPECT`` times wider or taller than the native grid);
* masks of another size are resized (nearest) to the image; a token cell is regenerated
  when the mask touches any of its pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from .sampling import Context, Trace, check_int, check_number

MAX_ASPECT = 8
MAX_INPUT_PIXELS = 64_000_000  # refuse decompression bombs before any resize
RESIZE_STRATEGIES = ("lattice", "reencode")


@dataclass
class TaskResult:
    image: np.ndarray  # (H, W, 3) uint8, the final output (blended when asked)
    raw: np.ndarray  # (H, W, 3) uint8, the decoded tokens without blending
    tokens: torch.Tensor  # (rows, cols)
    known: torch.Tensor  # (rows, cols) bool: cells that were context
    trace: Trace
    seed: int
    note: str | None = None


# -- input handling -------------------------------------------------------------------------
def to_rgb(image) -> Image.Image:
    """Any PIL image / array -> RGB PIL image (alpha composited on white)."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype.kind not in "biuf" or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 3, 4))):
            raise ValueError(f"expected an image array of shape (H, W) or (H, W, 1|3|4) with numbers, "
                             f"got shape {arr.shape} of {arr.dtype}")
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        elif arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr)
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected an image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise ValueError("the image is empty")
    if image.width * image.height > MAX_INPUT_PIXELS:
        raise ValueError(f"the image is too large ({image.width}x{image.height}); "
                         f"at most {MAX_INPUT_PIXELS // 1_000_000} megapixels")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() if arr.max() > 255 else 255.0
        image = Image.fromarray((arr / max(top, 1) * 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or image.mode.endswith("A"):
        rgba = image.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(bg, rgba)
    return image.convert("RGB")


def prepare_image(image, factor: int, rows: int) -> np.ndarray:
    """RGB uint8 (rows*factor, W, 3) with W a multiple of ``factor`` (see module docstring)."""
    img = to_rgb(image)
    h = rows * factor
    cols = int(round(img.width * h / img.height / factor))
    cols = min(max(cols, 1), rows * MAX_ASPECT)
    if h / img.height > 64:
        pass  # tiny inputs are upscaled; nothing to refuse
    img = img.resize((cols * factor, h), Image.BICUBIC if img.height < h else Image.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def mask_to_array(mask, size: tuple[int, int]) -> np.ndarray:
    """Any mask (PIL, array, RGBA brush layer) -> bool (H, W) at ``size`` = (W, H)."""
    if isinstance(mask, Image.Image):
        if mask.mode in ("RGBA", "LA"):
            arr = np.asarray(mask.getchannel("A"))
        else:
            arr = np.asarray(mask.convert("L"))
    else:
        arr = np.asarray(mask)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.ndim == 3:
            arr = arr[..., 3] if arr.shape[-1] == 4 else arr.max(-1)
        if arr.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W) or an image, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = (np.asarray(arr, dtype=np.float64) > 0).astype(np.uint8) * 255
    m = Image.fromarray(arr.astype(np.uint8))
    if m.size != size:
        m = m.resize(size, Image.NEAREST)
    return np.asarray(m) > 127


def cells_from_mask(mask: np.ndarray, factor: int, dilate: int = 0) -> torch.Tensor:
    """Pixel mask (H, W) bool -> cell mask (H/f, W/f) bool: a cell counts when the mask
    touches any of its pixels; ``dilate`` grows the region by that many cells."""
    t = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    cells = F.max_pool2d(t, factor)
    if dilate > 0:
        cells = F.max_pool2d(cells, 2 * dilate + 1, stride=1, padding=dilate)
    return cells[0, 0] > 0


def _soft_mask(cell_mask: torch.Tensor, pixel_mask: np.ndarray, factor: int, feather: float) -> np.ndarray:
    """Blend weight (H, W, 1) in [0, 1]: 1 where the output should show generated pixels."""
    region = np.kron(cell_mask.numpy().astype(np.uint8), np.ones((factor, factor), np.uint8))
    # Generated pixels inside the painted region, a soft edge reaching into the regenerated cells.
    base = Image.fromarray((pixel_mask * 255).astype(np.uint8))
    if feather > 0:
        base = base.filter(ImageFilter.GaussianBlur(feather))
    w = np.asarray(base, dtype=np.float32) / 255.0
    w = np.maximum(w, pixel_mask.astype(np.float32)) * region  # never outside regenerated cells
    return w[..., None]


def fit_steps(options: dict, n_free: int) -> tuple[dict, str | None]:
    """Policy: a task never asks for more steps than cells to decode; ``steps`` above the
    number of free cells becomes one step per cell, with a note saying so."""
    steps = options.get("steps", 32)
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps > n_free >= 1:
        s = "s" if n_free != 1 else ""
        return {**options, "steps": int(n_free)}, f"only {n_free} token{s} to decode, so {n_free} step{s} were used"
    return options, None


def _unchanged(pipe, img: np.ndarray, codes: torch.Tensor, seed: int | None, note: str) -> TaskResult:
    """The input returned as is when a task has nothing to decode (an empty trace)."""
    trace = Trace(*codes.shape, torch.empty(0, dtype=torch.long), [], [], torch.full(codes.shape, -1))
    return TaskResult(img, pipe.decode(codes[None])[0], codes, torch.ones(codes.shape, dtype=torch.bool), trace,
                      pipe.resolve_seed(seed), note)


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


# -- tasks ---------------------------------------------------------------------------------------
def inpaint(pipe, image, mask, label, dilate: int = 0, blend: bool = True, feather: float | None = None,
            seed: int | None = None, **options) -> TaskResult:
    """Regenerate the masked part of ``image`` as class ``label`` (same class: inpainting;
    another class: class-conditional editing).  ``options`` are sampling options."""
    dilate = check_int("dilate", dilate, 0, 64)
    if feather is not None:
        feather = check_number("feather", feather, 0.0, 64.0)
    rows = pipe.grid[0]
    f = pipe.factor
    img = prepare_image(image, f, rows)
    H, W = img.shape[:2]
    pix = mask_to_array(mask, (W, H))
    if not pix.any():
        raise ValueError("the mask is empty: paint the region to regenerate")
    cells = cells_from_mask(pix, f, dilate)
    codes = pipe.encode(img[None])[0]
    known = ~cells
    note = None
    if not known.any():
        note = "the mask covers the whole image: this is plain generation"
    options, capped = fit_steps(options, int(cells.sum()))
    note = _join(note, capped)
    out = pipe.generate([pipe.label_of(label)], seed=seed, grid=tuple(known.shape),
                        context=Context(codes, known) if known.any() else None, **options)
    raw = out.images[0]
    final = raw
    if blend:
        w = _soft_mask(cells, pix, f, f / 2 if feather is None else feather)
        final = (img * (1 - w) + raw * w + 0.5).astype(np.uint8)
    return TaskResult(final, raw, out.tokens[0], known, out.trace, out.seed, note)


def edit(pipe, image, mask, label, **kw) -> TaskResult:
    """Class-conditional editing: inpainting with the new class (e.g. turn a 3 into an 8)."""
    return inpaint(pipe, image, mask, label, **kw)


def place(tokens: torch.Tensor, left: int, right: int, top: int, bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Put (r, c) tokens inside a (top + r + bottom, left + c + right) grid.

    Returns (grid tokens (-1 where new), known mask)."""
    r, c = tokens.shape
    grid = torch.full((top + r + bottom, left + c + right), -1, dtype=torch.long)
    grid[top:top + r, left:left + c] = tokens
    return grid, grid >= 0


def outpaint(pipe, image, label, left: int = 0, right: int = 0, top: int = 0, bottom: int = 0,
             seed: int | None = None, max_cells: int = 4096, **options) -> TaskResult:
    """Extend ``image`` by whole token cells on any side; the new cells are decoded with
    the original tokens as context on the larger grid (RoPE built for that grid)."""
    ext = {"left": left, "right": right, "top": top, "bottom": bottom}
    for k, v in ext.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{k} must be a non-negative whole number of token cells, got {v!r}")
    f = pipe.factor
    img = prepare_image(image, f, pipe.grid[0])
    r, c = img.shape[0] // f, img.shape[1] // f
    R, C = top + r + bottom, left + c + right
    if R * C > max_cells:
        raise ValueError(f"the extended grid {R}x{C} has {R * C} cells; at most {max_cells}")
    codes = pipe.encode(img[None])[0]
    grid, known = place(codes, left, right, top, bottom)
    if known.all():
        return _unchanged(pipe, img, codes, seed, "nothing to extend: all sides are 0")
    options, note = fit_steps(options, int((~known).sum()))
    out = pipe.generate([pipe.label_of(label)], seed=seed, grid=tuple(grid.shape),
                        context=Context(grid.clamp(min=0), known), **options)
    raw = out.images[0]
    final = raw.copy()
    final[top * f:top * f + img.shape[0], left * f:left * f + img.shape[1]] = img
    return TaskResult(final, raw, out.tokens[0], known, out.trace, out.seed, note)


def panorama(pipe, image, label, times: int = 4, side: str = "right", seed: int | None = None,
             **options) -> TaskResult:
    """Repeated outpainting: each round extends by half the current native width, until the
    image is ``times`` as wide (or tall) as the input.  Every round conditions on the last
    native-size window only, so the grid stays small."""
    if side not in ("left", "right", "top", "bottom"):
        raise ValueError(f"side must be left, right, top or bottom, got {side!r}")
    if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or not 1 <= times <= 8:
        raise ValueError(f"times must be a whole number from 1 to 8, got {times!r}")
    f, rows = pipe.factor, pipe.grid[0]
    cur = prepare_image(image, f, rows)
    if side in ("top", "bottom"):  # work on the transposed image
        cur = cur.transpose(1, 0, 2)
    target = cur.shape[1] * times
    seed = pipe.resolve_seed(seed)
    step_cells = max(1, rows // 2)
    last = None
    k = 0
    while cur.shape[1] < target:
        add = min(step_cells, (target - cur.shape[1]) // f)
        window = cur[:, -rows * f:] if side in ("right", "bottom") else cur[:, :rows * f]
        win = window if side not in ("top", "bottom") else window.transpose(1, 0, 2)
        kw = {{"right": "right", "left": "left", "bottom": "bottom", "top": "top"}[side]: add}
        last = outpaint(pipe, win, label, seed=seed + k, **kw, **options)
        new = last.image if side not in ("top", "bottom") else last.image.transpose(1, 0, 2)
        if side in ("right", "bottom"):
            cur = np.concatenate([cur, new[:, -add * f:]], axis=1)
        else:
            cur = np.concatenate([new[:, :add * f], cur], axis=1)
        k += 1
    if side in ("top", "bottom"):
        cur = cur.transpose(1, 0, 2)
    if last is None:
        raise ValueError("times must be at least 2 to extend the image")
    return TaskResult(np.ascontiguousarray(cur), last.raw, last.tokens, last.known, last.trace, seed, last.note)


def lattice_context(tokens: torch.Tensor, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread (r, c) tokens on a sub-lattice of a (rows, cols) grid: token (i, j) goes to
    (floor(i * rows / r), floor(j * cols / c)).  Returns (grid tokens, known mask)."""
    r, c = tokens.shape
    if rows < r or cols < c:
        raise ValueError(f"target grid {rows}x{cols} must not be smaller than the source {r}x{c}")
    ri = (torch.arange(r) * rows) // r
    ci = (torch.arange(c) * cols) // c
    grid = torch.full((rows, cols), -1, dtype=torch.long)
    grid[ri[:, None], ci[None, :]] = tokens
    return grid, grid >= 0


def resize(pipe, image, label, scale: float = 1.5, strategy: str = "lattice", regenerate: float = 0.5,
           seed: int | None = None, max_cells: int = 4096, **options) -> TaskResult:
    """Resolution change: a (r, c)-token image to round(scale * r) x round(scale * c) tokens.

    strategy "lattice": the original tokens on a sub-lattice of the bigger grid, the rest
    generated.  "reencode": the image upsampled (bicubic), re-encoded on the big grid, and
    a random ``regenerate`` fraction of the cells decoded again (the rest kept)."""
    if strategy not in RESIZE_STRATEGIES:
        raise ValueError(f"strategy must be one of {RESIZE_STRATEGIES}, got {strategy!r}")
    scale = check_number("scale", scale, 1.0, 4.0)
    regenerate = check_number("regenerate", regenerate, 0.0, 1.0, lo_open=True)
    f = pipe.factor
    img = prepare_image(image, f, pipe.grid[0])
    r, c = img.shape[0] // f, img.shape[1] // f
    R, C = round(r * scale), round(c * scale)
    if R * C > max_cells:
        raise ValueError(f"the target grid {R}x{C} has {R * C} cells; at most {max_cells}")
    seed = pipe.resolve_seed(seed)
    if strategy == "lattice":
        codes = pipe.encode(img[None])[0]
        grid, known = lattice_context(codes, R, C)
        if known.all():
            return _unchanged(pipe, img, codes, seed, "the grid does not grow at this scale: nothing to generate")
    else:
        big = np.asarray(Image.fromarray(img).resize((C * f, R * f), Image.BICUBIC))
        grid = pipe.encode(big[None])[0]
        g = torch.Generator().manual_seed(seed)
        n_regen = max(1, round(regenerate * R * C))
        pick = torch.randperm(R * C, generator=g)[:n_regen]
        known = torch.ones(R * C, dtype=torch.bool)
        known[pick] = False
        known = known.view(R, C)
    options, note = fit_steps(options, int((~known).sum()))
    out = pipe.generate([pipe.label_of(label)], seed=seed, grid=(R, C), context=Context(grid.clamp(min=0), known),
                        **options)
    return TaskResult(out.images[0], out.images[0], out.tokens[0], known, out.trace, out.seed, note)
