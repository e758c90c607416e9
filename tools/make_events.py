"""Write API Gateway / S3 event payloads for the Lambda functions into events/ (or --out).

The committed events/ carry a small synthetic image (a 96x72 gradient PNG drawn here, so no test
photo is copied into the repository): real payload shapes with real bodies, answering 200 NO_FACE.
To try a real face: `python3 tools/make_events.py --image ../shared/testdata/faces/live/facerec_obama.jpg --out target/events`
then `cargo lambda invoke ekyc-api --data-file target/events/apigw-v2-multipart.json`.
The tests also substitute a real testdata face into these same payloads.
"""
import argparse
import base64
import json
import os
import struct
import zlib

BOUNDARY = "----ekycBoundary7MA4YWxkTrZu0gW"


def gradient_png(w=96, h=72):
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            row += bytes((x * 255 // (w - 1), y * 255 // (h - 1), 128))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def multipart(image, filename, ctype):
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n").encode()
    return head + image + f"\r\n--{BOUNDARY}--\r\n".encode()


def v2(method, path, query, headers, body, request_id):
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "abcd123456.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0",
                    "x-forwarded-for": "203.0.113.10", "x-forwarded-port": "443", "x-forwarded-proto": "https", **headers},
        **({"queryStringParameters": dict(p.split("=", 1) for p in query.split("&"))} if query else {}),
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcd123456",
            "domainName": "abcd123456.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abcd123456",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "requestId": request_id, "routeKey": f"{method} {path}", "stage": "$default",
            "time": "29/Nov/2026:12:00:00 +0000", "timeEpoch": 1795953600000,
        },
        **({"body": base64.b64encode(body).decode(), "isBase64Encoded": True} if body is not None else {"isBase64Encoded": False}),
    }


def session_frames(frames):
    """The multipart body of a session attempt: `frame` fields and one `timestamps` field."""
    out = b""
    for i, (img, _) in enumerate(frames):
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"f{i}.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + img + b"\r\n"
    stamps = ",".join(str(t) for _, t in frames)
    return out + (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"timestamps\"\r\n\r\n{stamps}\r\n"
                  f"--{BOUNDARY}--\r\n").encode()


def named_parts(parts):
    """A multipart body of image fields: [(name, image bytes, filename, content type)]."""
    out = b""
    for name, img, filename, ctype in parts:
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode() + img + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


# A session id that no server issued (the tests substitute one they created).
EXAMPLE_SESSION = "0123456789abcdef0123456789abcdef"


def v1(method, path, headers, body, request_id, stage="Prod"):
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"Host": "abcd123456.execute-api.us-east-1.amazonaws.com", "User-Agent": "curl/8.5.0", **headers},
        "multiValueHeaders": {"Host": ["abcd123456.execute-api.us-east-1.amazonaws.com"], "User-Agent": ["curl/8.5.0"],
                              **{k: [v] for k, v in headers.items()}},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "a1b2c3", "stage": stage, "requestId": request_id,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "resourcePath": "/{proxy+}", "httpMethod": method, "apiId": "abcd123456",
            "path": f"/{stage}{path}", "protocol": "HTTP/1.1", "requestTimeEpoch": 1795953600000,
            "domainName": "abcd123456.execute-api.us-east-1.amazonaws.com",
        },
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
    }


def s3_put(bucket, key_encoded, size, etag, sequencer):
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-29T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEPRINCIPAL"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "UploadsTrigger",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key_encoded, "size": size, "eTag": etag, "sequencer": sequencer}},
    }]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", help="image to embed (default: a synthetic gradient PNG)")
    ap.add_argument("--out", default="events")
    a = ap.parse_args()
    if a.image:
        image = open(a.image, "rb").read()
        name = os.path.basename(a.image)
        ctype = "image/png" if name.lower().endswith(".png") else "image/webp" if name.lower().endswith(".webp") else "image/jpeg"
    else:
        image, name, ctype = gradient_png(), "gradient.png", "image/png"
    os.makedirs(a.out, exist_ok=True)
    events = {
        "apigw-v2-multipart.json": v2("POST", "/v1/liveness", "enable_checks=true",
                                      {"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
                                      multipart(image, name, ctype), "Pq3bYhvLIAMEJbQ="),
        "apigw-v1-raw-image.json": v1("POST", "/v1/liveness", {"Content-Type": ctype}, image, "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"),
        "apigw-v2-bad-body.json": v2("POST", "/v1/liveness", "",
                                     {"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
                                     f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"x.jpg\"\r\n\r\nnot the file field\r\n--{BOUNDARY}--\r\n".encode(),
                                     "Pq3bYhvLIAMEJbR="),
        "apigw-v2-health.json": v2("GET", "/health", "", {"accept": "application/json"}, None, "Pq3bYhvLIAMEJbS="),
        "apigw-v2-session-create.json": v2("POST", "/v1/sessions", "", {"x-device-id": "device-1234"}, None, "Pq3bYhvLIAMEJbT="),
        "apigw-v2-session-verify.json": v2("POST", f"/v1/sessions/{EXAMPLE_SESSION}/verify", "",
                                           {"content-type": f"multipart/form-data; boundary={BOUNDARY}", "x-device-id": "device-1234"},
                                           session_frames([(gradient_png(96 + 8 * i, 72), 100 * i) for i in range(6)]),
                                           "Pq3bYhvLIAMEJbU="),
        "apigw-v2-session-result.json": v2("GET", f"/v1/sessions/{EXAMPLE_SESSION}/result", "", {"accept": "application/json"}, None, "Pq3bYhvLIAMEJbV="),
        "apigw-v2-match.json": v2("POST", "/v1/match", "require_live=true",
                                  {"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
                                  named_parts([("selfie", image, name, ctype),
                                               ("document", gradient_png(120, 80), "document.png", "image/png")]),
                                  "Pq3bYhvLIAMEJbW="),
        "s3-put-image.json": s3_put("ekyc-uploads-example", "uploads/selfie-0001.png", len(image), "0123456789abcdef0123456789abcdef", "0055AED6DCD90281E5"),
        "s3-put-encoded-key.json": s3_put("ekyc-uploads-example", "uploads/customer+42/sj%C3%B6+selfie%20%C3%A9t%C3%A9.png", len(image), "0123456789abcdef0123456789abcdef", "0055AED6DCD90281E6"),
        "s3-put-not-image.json": s3_put("ekyc-uploads-example", "uploads/notes.txt", 42, "fedcba9876543210fedcba9876543210", "0055AED6DCD90281E7"),
    }
    for fname, ev in events.items():
        with open(os.path.join(a.out, fname), "w") as f:
            json.dump(ev, f, indent=2)
            f.write("\n")
        print(f"wrote {os.path.join(a.out, fname)}")


if __name__ == "__main__":
    main()
