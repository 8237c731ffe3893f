"""An ASGI app written for the AGNT5 Worker Runtime docs, with CORS for browsers:

    uvicorn sdk_asgi:app --port 8000          # from examples/
    curl localhost:8000/invoke/web_handler -H 'content-type: application/json' \\
      -d '{"user": "ada"}'
"""

from agnt5 import Worker, function


@function()
def web_handler(request: dict) -> dict:
    return {"message": "Hello from AGNT5!", "data": request}


@function("add_numbers")
def add(a: int, b: int) -> int:
    return a + b


# Create ASGI application
app = Worker(service_name="web-service", runtime="asgi")

# Enable CORS for browser access
app.enable_cors()
