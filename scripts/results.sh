#!/usr/bin/env bash
# Recompute every committed result of the shipped model (quality, tasks, benchmarks,
# example images, screenshots). Run on a quiet machine; it takes about half an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False NO_PROXY=localhost,127.0.0.1 HF_HUB_OFFLINE=1
python -m arpg eval --per-class 100 --fd-per-class 20 --json docs/benchmarks/quality.json
python scripts/bench_tasks.py --trials 100 --resize-trials 50 --json docs/benchmarks/tasks.json
python scripts/bench_tasks.py --trials 100 --resize-trials 50 --style wide --json docs/benchmarks/tasks-wide.json
python -m arpg bench --model digits --batch 16 --steps 8,16,32,64,128,256 --repeats 2 --quality --quality-per-class 20 \
    --json docs/benchmarks/shipped.json --plot docs/benchmarks/shipped.png
python -m arpg bench --model digits --batch 1 --steps 8,16,32,64 --repeats 3 --json docs/benchmarks/shipped-batch1.json
python -m arpg bench --preset ARPG-L --batch 1 --steps 32 --repeats 1 --dtype bfloat16 --json docs/benchmarks/arpg-l-bf16.json
python -m arpg bench --model digits --orders random,raster,spiral-in,spiral-out,z-curve,alternate,halton,lpd,confidence \
    --steps 32 --quality-per-class 20 --json docs/benchmarks/orders.json --plot docs/benchmarks/orders.png
python -m arpg bench --model scenes --orders random,raster,halton,lpd,confidence --steps 32 --quality-per-class 20 \
    --json docs/benchmarks/orders-scenes.json --plot docs/benchmarks/orders-scenes.png
python -m arpg bench --model digits --batch 16 --steps 32 --methods arpg --baseline --repeats 3 --no-decode --quality \
    --quality-per-class 50 --json docs/benchmarks/shipped-default.json
python -m arpg bench --preset ARPG-L --batch 1 --steps 32 --methods arpg --baseline --repeats 2 --json docs/benchmarks/arpg-l-default.json
python -m arpg bench --model digits --batch 1,16 --steps 32 --methods arpg,raster --repeats 2 \
    --json docs/benchmarks/shipped-parallel.json
python -m arpg bench --model digits --profile --baseline --batch 16 --steps 32 --json docs/benchmarks/profile-shipped.json
python -m arpg bench --preset ARPG-L --profile --baseline --batch 1 --steps 32 --json docs/benchmarks/profile-arpg-l.json
OMP_NUM_THREADS=1 python scripts/bench_windows.py --model digits --parts outpaint,panorama,resize --trials 50 \
    --steps 16 --split 17 --downscale lanczos --json docs/benchmarks/windows.json
python scripts/make_windows_examples.py
if [ -f assets/models/scenes/arpg.safetensors ]; then  # once `python -m arpg train --recipe scenes` has finished
    python -m arpg eval --model scenes --per-class 100 --fd-per-class 20 --steps 8,16,32,64 --no-raster --json docs/benchmarks/quality-scenes.json
    OMP_NUM_THREADS=2 python scripts/bench_windows.py --model scenes --json docs/benchmarks/scenes_tasks.json \
        --beside digits=docs/benchmarks/windows.json
    python scripts/make_windows_examples.py --model scenes
    python scripts/make_samples.py --model scenes
fi
python scripts/make_samples.py
python scripts/make_docs.py
python scripts/screenshots.py
