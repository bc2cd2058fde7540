"""Example images of every task for the README (docs/examples/), from the shipped model.

python scripts/make_docs.py   (the samples grid is scripts/make_samples.py's)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from arpg import tasks
from arpg.data import digits as data
from arpg.measure.task_quality import subject_box_mask
from arpg.pipeline import Pipeline
from arpg.viz.animate import comparison_animation, save_animation, trace_frames
from arpg.viz.frames import step_heatmap

OUT = Path("docs/examples")


def big(img: np.ndarray, s: int = 3) -> Image.Image:
    im = Image.fromarray(img)
    return im.resize((im.width * s, im.height * s), Image.NEAREST)


def labelled(images: list[Image.Image], titles: list[str]) -> Image.Image:
    h = max(i.height for i in images) + 18
    w = sum(i.width for i in images) + 6 * (len(images) + 1)
    canvas = Image.new("RGB", (w, h + 4), "white")
    d = ImageDraw.Draw(canvas)
    x = 6
    for im, t in zip(images, titles):
        d.text((x, 2), t, fill=(20, 20, 20))
        canvas.paste(im, (x, 18))
        x += im.width + 6
    return canvas


def masked(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[mask] = (out[mask] * 0.35 + np.array([255, 255, 255]) * 0.65).astype(np.uint8)
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline.shipped()
    opts16 = pipe.defaults.replace(steps=16)
    imgs, labels = data.sample(range(4), seed=data.HELDOUT_SEED + 5, style=data.GENERATOR_STYLE)
    x, y = imgs[0], int(labels[0])
    # inpainting and editing
    m = np.zeros((64, 64), bool)
    m[:, 32:] = True
    inp = tasks.inpaint(pipe, x, m, y, options=opts16, seed=1)
    new = (y + 3) % 10
    box = subject_box_mask(x)
    ed = tasks.edit(pipe, x, box, new, options=opts16, seed=1)
    titles = ["input", "mask (right half)", f"inpainted as {y}", "mask", f"edited to {new}"]
    labelled([big(x), big(masked(x, m)), big(inp.image), big(masked(x, box)), big(ed.image)], titles).save(
        OUT / "inpaint_edit.png"
    )
    # outpainting and panorama
    out = tasks.outpaint(pipe, x, y, left=4, right=4, top=2, bottom=2, options=opts16, seed=2)
    pano = tasks.panorama(pipe, imgs[1], int(labels[1]), times=4, options=opts16, seed=3)
    labelled([big(x), big(out.image)], ["input 16x16 tokens", "outpainted to 20x24 tokens"]).save(OUT / "outpaint.png")
    labelled([big(pano.image, 2)], ["panorama: input extended 4x to the right"]).save(OUT / "panorama.png")
    # resolution change
    lat = tasks.resize(pipe, x, y, scale=1.5, strategy="lattice", options=opts16, seed=4)
    ree = tasks.resize(pipe, x, y, scale=1.5, strategy="reencode", options=opts16, seed=4)
    labelled(
        [big(x, 3), big(lat.image, 2), big(ree.image, 2)], ["input 64 px", "lattice, 96 px", "re-encode, 96 px"]
    ).save(OUT / "resize.png")
    # decoding order
    o = pipe.generate([y], opts16, seed=5, snapshots=True)
    save_animation(trace_frames(pipe, o, label_text=pipe.class_names[y]), OUT / "order.gif", fps=4)
    step_heatmap(o.trace.step_of.numpy(), title="step at which each cell was decoded").save(OUT / "heatmap.png")
    comparison_animation(pipe, y, OUT / "compare.gif", opts16, seed=5)
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
