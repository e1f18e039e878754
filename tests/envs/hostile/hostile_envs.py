"""Deliberately hostile environments: each misbehaves in `step` (used by test_sandbox.py)."""

import os
import socket

import gymnasium as gym
import numpy as np


class Hostile(gym.Env):
    def __init__(self, attack="none", target=""):
        self.attack, self.target = attack, target
        self.observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.hoard = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        if self.attack == "socket":
            socket.create_connection(("93.184.216.34", 80), timeout=5)
        elif self.attack == "write":
            with open(self.target, "w") as f:
                f.write("pwned")
        elif self.attack == "read_home":
            with open(self.target) as f:
                f.read()
        elif self.attack == "fork":
            while True:
                if os.fork() == 0:
                    import time

                    time.sleep(60)
                    os._exit(0)
        elif self.attack == "memory":
            while True:
                self.hoard.append(bytearray(256 * 1024 * 1024))
        elif self.attack == "environ":  # what it could smuggle into the recorded infos
            return np.zeros(2, np.float32), 0.0, False, False, {"environ": dict(os.environ)}
        elif self.attack == "fill":  # fill the directory it runs in, 1 MiB at a time
            with open(os.path.join(self.target or os.getcwd(), "fill.bin"), "wb") as f:
                while True:
                    f.write(b"x" * (1 << 20))
                    f.flush()
        return np.zeros(2, np.float32), 0.0, False, False, {}


for attack in ("none", "socket", "write", "read_home", "fork", "memory", "environ", "fill"):
    gym.register(f"Hostile-{attack}-v0", entry_point=Hostile, kwargs={"attack": attack})
