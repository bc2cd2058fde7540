"""Start the ARPG Sandbox web app: ``python app.py`` serves the shipped model on 127.0.0.1:7860.

Released checkpoints: ``python app.py --weights ARPG-L`` (or a local file, or
``hf://hp-l33/ARPG/arpg_300m.pt``), or the same in ``$ARPG_WEIGHTS`` (a flag wins; a Space
sets the variable); the tokenizer (``--tokenizer`` / ``$ARPG_TOKENIZER``) defaults to
LlamaGen's ``vq_ds16_c2i.pt``. When they cannot be loaded (offline, missing file) the app
falls back to the shipped model and says so at the top of the page. The page's Model dropdown
also offers the shipped model, the scenes model and every released model present in the hub
cache; each browser session (and each API call, by its ``model`` argument) uses the one it chose.

The scenes model is ``assets/models/scenes`` once its weights exist; ``--scenes DIR`` (or
``$ARPG_SCENES``) offers another folder instead, e.g. a preview packed mid-training
(``python -m arpg train --recipe scenes --preview DIR``); a named folder that is missing or lacks
the weights stops the app at start-up with one line saying so (exit status 2).

The endpoints are also MCP tools at ``/gradio_api/mcp/`` (``demo/mcp_tools.py``); ``--no-mcp`` (or
``GRADIO_MCP_SERVER=false``) turns them off.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

# torch, gradio and the app are imported inside main(): ``python app.py`` restarts itself once
# (see the end of this file) and must not import them twice.


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--weights",
        help="ARPG checkpoint: a path, hf://org/repo/file, or ARPG-L / ARPG-XL / ARPG-XXL "
        "(default: $ARPG_WEIGHTS, else the shipped model)",
    )
    p.add_argument(
        "--tokenizer",
        help="VQ tokenizer: a path or hf://org/repo/file (default: $ARPG_TOKENIZER, else "
        "LlamaGen vq_ds16_c2i for released weights)",
    )
    p.add_argument(
        "--scenes",
        metavar="DIR",
        help="folder of the scenes model to offer (arpg/vq/judge .safetensors + JSON), e.g. a training "
        "preview (default: $ARPG_SCENES, else assets/models/scenes once its weights exist)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to listen on")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument(
        "--no-mcp",
        action="store_true",
        help="do not serve the endpoints as MCP tools at /gradio_api/mcp/ (also: GRADIO_MCP_SERVER=false)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Load the model (with fallbacks), build the app and serve it until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from demo import server

    server.prepare_process()  # before gradio is imported: one temp folder, removed on SIGTERM/SIGINT/exit
    from arpg.hub import env_choice
    from arpg.zoo import MODELS
    from demo.mcp_tools import launch_kwargs, mcp_enabled
    from demo.ui import build_demo, launch_options, model_store

    weights, tokenizer = env_choice(args.weights, args.tokenizer)
    try:
        store = model_store(weights, tokenizer, args.device, folders={"scenes": args.scenes})
    except ValueError as exc:  # a named model folder that cannot serve: one line, like a bad flag
        source = "--scenes" if args.scenes else f"${MODELS['scenes'].env}"
        print(f"app.py: error: {source}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    demo = build_demo(store)
    options = launch_options(server_name=args.host, server_port=args.port, share=args.share)
    demo.launch(**launch_kwargs(demo, options, mcp_enabled(args.no_mcp)))


if __name__ == "__main__":
    if "MALLOC_ARENA_MAX" not in os.environ:
        # glibc gives every busy thread its own malloc arena; with a queue of concurrent
        # requests the process then grows for a long while (not a leak). Two arenas keep it
        # flat (scripts/load_test.py: +27% -> +8.5% from request 20 to 200).
        os.environ["MALLOC_ARENA_MAX"] = "2"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    main()
