"""Write tests/qcfs/qcfs_keras.keras: a Keras 3 functional model whose activations are QCFS
(Bu et al. 2022) spelled with ``keras.ops`` on symbolic tensors, plus Keras's own outputs.

    KERAS_BACKEND=tensorflow python tests/qcfs/make_qcfs_keras.py   (needs keras>=3, a backend)

Not run by the tests (they read the committed files): it documents how they were made.  The
two activations use the two spellings of the input slope: ``ops.multiply(x, L/λ)`` and
``ops.divide(x, λ/L)``; the output scale is ``ops.multiply(·, λ/L)``.
"""

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

OUT = Path(__file__).resolve().parent
L = 4


def qcfs(x, lam, divide=False):
    x = ops.divide(x, lam / L) if divide else ops.multiply(x, L / lam)
    x = ops.floor(ops.add(x, 0.5))
    return ops.multiply(ops.clip(x, 0.0, float(L)), lam / L)


def main():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same", bias_initializer="glorot_uniform")(inp)
    x = qcfs(x, 1.5)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(5, 3, padding="same", bias_initializer="glorot_uniform")(x)
    x = qcfs(x, 1.25, divide=True)
    x = layers.Flatten()(x)
    out = layers.Dense(3, name="logits")(x)
    m = keras.Model(inp, out, name="qcfs_keras")
    m.save(OUT / "qcfs_keras.keras")
    x = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 2)).astype(np.uint8)
    y = m.predict(x.astype(np.float32) / 255, verbose=0)
    np.savez(OUT / "qcfs_keras_ref.npz", x=x, logits=y.astype(np.float32))
    print("keras", keras.__version__, "wrote", OUT / "qcfs_keras.keras")


if __name__ == "__main__":
    main()
