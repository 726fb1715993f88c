"""Sends a photo to a running wick-serve image model with the stock tritonclient HTTP client.

Usage: triton_photo.py HOST:PORT TOKEN MODEL PHOTO
The photo is prepared as Wick documents for clients (README, "Photos as they come"): upright by its
EXIF orientation, RGB, the largest centred region of the model's aspect ratio, resized with Pillow's
BILINEAR filter, sent as UINT8 [1, h, w, 3]. Prints one JSON object with the answer.
"""
import json
import sys

import numpy as np
import tritonclient.http as http
from PIL import Image, ImageOps

host, token, model, photo = sys.argv[1:5]
headers = {"Authorization": f"Bearer {token}"}
client = http.InferenceServerClient(host)
meta = client.get_model_metadata(model, headers=headers)
_, h, w, c = meta["inputs"][0]["shape"]

image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB" if c == 3 else "L")
scale = min(image.width / w, image.height / h)
crop_w, crop_h = w * scale, h * scale
left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
image = image.resize((w, h), Image.BILINEAR, box=(left, top, left + crop_w, top + crop_h))
pixels = np.asarray(image, dtype=np.uint8).reshape(1, h, w, c)

x = http.InferInput(meta["inputs"][0]["name"], list(pixels.shape), "UINT8")
x.set_data_from_numpy(pixels, binary_data=True)
result = client.infer(model, [x], headers=headers)
# The first output is the predicted class (named after the target), then its probabilities.
label_name = meta["outputs"][0]["name"]
print(json.dumps({
    "input_shape": meta["inputs"][0]["shape"],
    "label": [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy(label_name).tolist()],
    "probabilities": result.as_numpy("probabilities").tolist(),
    "model_version": result.get_response().get("model_version"),
}))
