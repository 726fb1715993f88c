"""Calls a running wick-serve with the stock tritonclient HTTP client (an Open Inference Protocol client).

Usage: triton_client.py HOST:PORT TOKEN [MODEL]   (MODEL: default weather)
Prints one JSON object with what the server answered.
"""
import json
import sys

import numpy as np
import tritonclient.http as http

host, token = sys.argv[1], sys.argv[2]
model = sys.argv[3] if len(sys.argv) > 3 else "weather"
headers = {"Authorization": f"Bearer {token}"}
client = http.InferenceServerClient(host)
ready = client.is_server_ready(headers=headers)
meta = client.get_model_metadata(model, headers=headers)

inputs = []
for name, values, dtype in [("temp_min", [10.0, 15.5], "FP64"), ("wind", [3.0, 1.2], "FP64")]:
    x = http.InferInput(name, [2], dtype)
    x.set_data_from_numpy(np.array(values, dtype=np.float64), binary_data=False)
    inputs.append(x)
w = http.InferInput("weather", [2], "BYTES")
w.set_data_from_numpy(np.array(["rain", "sun"], dtype=object), binary_data=False)
inputs.append(w)
outputs = [http.InferRequestedOutput("temp_max", binary_data=False)]
result = client.infer(model, inputs, outputs=outputs, headers=headers)
print(json.dumps({
    "ready": ready,
    "inputs": [i["name"] for i in meta["inputs"]],
    "prediction": result.as_numpy("temp_max").tolist(),
}))
