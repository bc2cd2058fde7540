"""Held-out quality of the scenes tokenizer and judge (issue 17's must-show): tokenizer PSNR on
1,000 held-out 64x64 scenes, judge accuracy on 2,000.  ``python scripts/eval_scenes_parts.py``"""

import time

import numpy as np
import torch

from arpg.checkpoints import load_vq
from arpg.data import scenes
from arpg.judge import judge_images, load_judge
from arpg.tokenizer import from_uint8, to_uint8

MODELS = "assets/models/scenes"


def main() -> None:
    t0 = time.time()
    vq = load_vq(f"{MODELS}/vq.safetensors", device="cpu").eval()
    imgs, _ = scenes.sample(np.arange(1000), scenes.HELDOUT_SEED)
    with torch.inference_mode():
        out = np.concatenate(
            [
                to_uint8(vq.decode(vq.encode(from_uint8(torch.from_numpy(imgs[i : i + 100]))))).numpy()
                for i in range(0, len(imgs), 100)
            ]
        )
    mse = ((out.astype(float) - imgs.astype(float)) ** 2).reshape(len(imgs), -1).mean(1)
    psnr = np.mean(10 * np.log10(255**2 / np.maximum(mse, 1e-10)))
    print(f"tokenizer PSNR on {len(imgs)} held-out 64x64 scenes: {psnr:.2f} dB (mean of per-image PSNR)")
    judge = load_judge(f"{MODELS}/judge.safetensors")
    imgs, labels = scenes.sample(np.arange(1000, 3000), scenes.HELDOUT_SEED)
    pred, _ = judge_images(judge, imgs)
    print(f"judge accuracy on {len(imgs)} held-out scenes: {100 * (pred == np.asarray(labels)).mean():.2f}%")
    print(f"took {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
