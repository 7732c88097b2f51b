"""Engine-service benchmark: what serving live data costs the engine, per number of attached clients.

The engine (simulated rig, full frame 1920x1200 at 10 Hz, speed 1) runs in this process behind an
EngineServer; 0, 1 and 3 clients run in their own processes, each receiving the newest frames. The
figure is the engine process's CPU time per wall second, as a ratio to serving nobody (measured in the
same run), plus the frames each client received per second.

Run: .venv/bin/python benchmarks/bench_service.py [--seconds S]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import textwrap
import time

from operascope.acquisition.microscope import Microscope
from operascope.service.server import EngineServer
from operascope.service.state import EngineAddress, new_token

CLIENT = textwrap.dedent("""
    import sys, time
    from operascope.service.client import RemoteEngine
    from operascope.service.state import EngineAddress
    engine = RemoteEngine(EngineAddress(*sys.argv[1:4], sys.argv[4]))
    seen, end = set(), time.monotonic() + float(sys.argv[5])
    while time.monotonic() < end:
        frame = engine.latest_frame()
        if frame is not None:
            seen.add(frame.frame_id)
        time.sleep(0.01)
    print(len(seen) / float(sys.argv[5]))
    engine.close()
""")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(server: EngineServer, address: EngineAddress, clients: int, seconds: float) -> tuple[float, list[float]]:
    """Engine CPU seconds per wall second with ``clients`` attached, and each client's frames/s."""
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, address.command_endpoint, address.publish_endpoint,
                               str(address.pid), address.token, str(seconds)], stdout=subprocess.PIPE, text=True)
             for _ in range(clients)]
    time.sleep(1.0)  # let them connect
    cpu0, wall0 = _cpu_s(), time.monotonic()
    time.sleep(seconds - 1.5)
    cpu = (_cpu_s() - cpu0) / (time.monotonic() - wall0)
    rates = [float(p.communicate(timeout=60)[0].strip() or 0) for p in procs]
    return cpu, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    with Microscope.from_config(None, roi=(0, 0, 1920, 1200), frame_rate_hz=10.0, speed=1.0) as scope:
        scope.start_live()
        token = new_token()
        server = EngineServer(scope, token)
        command, publish = server.start()
        address = EngineAddress(command, publish, 0, token)
        try:
            time.sleep(2.0)
            results = {n: measure(server, address, n, args.seconds) for n in (0, 1, 3)}
        finally:
            server.stop()
    base = results[0][0]
    print(f"engine CPU per wall second, full frame 1920x1200 at 10 Hz (simulated camera renders each frame):")
    for n, (cpu, rates) in results.items():
        shown = ", ".join(f"{r:.1f}" for r in rates) or "-"
        print(f"  {n} client(s): {cpu:.3f} CPU s/s = {cpu / base:.2f}x serving none; frames/s per client: {shown}")


if __name__ == "__main__":
    main()
