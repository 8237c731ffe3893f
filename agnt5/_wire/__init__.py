"""How invocations and errors travel: gRPC streams, frame records, batching, status, HTTP bodies.

- `records`: the plain records the frame codec (`agnt5._speedups`) reads and writes;
- `streams`: the batched gRPC streams (worker stream, ``InvokeStream``) through that codec;
- `batching`: adaptive batching of a stream's outgoing items;
- `client_stream`: the `AsyncClient`'s side of ``InvokeStream``;
- `status`: agnt5 errors as gRPC status and trailing metadata;
- `http`: the HTTP error document, the bounded body reader and raw ASGI responses;
- `views`: the plain-dict views of services and components the client and the gateway return.

Both the runtimes and the coordinator use this layer; it uses neither.
"""
