#!/usr/bin/env python3
"""Rough single-connection numbers for a running gantryd: enqueue rate, reserve+ack rate, wake-up latency.

    scripts/bench.py [--broker 127.0.0.1:7440] [--jobs 2000]

Standard library only. Each scenario uses its own queue name, so it can run against a live broker;
it leaves completed jobs behind in that queue's history. Issue 7 brings the full benchmark (`gantry bench`).
"""
import argparse
import json
import socket
import statistics
import threading
import time
import uuid


class Line:
    """One newline-delimited JSON-RPC connection."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.next_id = 0

    def send(self, method, params=None):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        return self.next_id

    def receive(self):
        response = json.loads(self.file.readline())
        if "error" in response:
            raise RuntimeError(response["error"]["message"])
        return response

    def call(self, method, params=None):
        self.send(method, params)
        return self.receive()["result"]


def enqueue_sequential(address, count, queue):
    client = Line(address)
    started = time.perf_counter()
    for _ in range(count):
        client.call("enqueue", {"type": "bench.noop", "queue": queue})
    return count / (time.perf_counter() - started)


def enqueue_pipelined(address, count, queue, window=64):
    client = Line(address)
    started = time.perf_counter()
    sent = received = 0
    while received < count:
        while sent < count and sent - received < window:
            client.send("enqueue", {"type": "bench.noop", "queue": queue})
            sent += 1
        client.receive()
        received += 1
    return count / (time.perf_counter() - started)


def reserve_ack_sequential(address, count, queue):
    client = Line(address)
    started = time.perf_counter()
    done = 0
    while done < count:
        jobs = client.call("reserve", {"queues": [queue], "max": 1})["jobs"]
        if not jobs:
            break
        client.call("ack", {"id": jobs[0]["id"]})
        done += 1
    return done / (time.perf_counter() - started)


def wake_latency(address, rounds, queue, gap=0.005):
    """A worker long-polls; a producer enqueues one job at a time, 5 ms apart. Measures from the moment the
    producer's enqueue is answered (committed) to the moment the waiting reserve's answer arrives."""
    worker, producer = Line(address), Line(address)
    latencies = []
    for _ in range(rounds):
        worker.send("reserve", {"queues": [queue], "max": 1, "wait_ms": 5000})
        time.sleep(gap)
        committed = {}

        def produce():
            producer.call("enqueue", {"type": "bench.ping", "queue": queue})
            committed["at"] = time.perf_counter()

        thread = threading.Thread(target=produce)
        thread.start()
        response = worker.receive()
        woke = time.perf_counter()
        thread.join()
        job = response["result"]["jobs"][0]
        latencies.append(max(0.0, woke - committed["at"]) * 1000)
        worker.call("ack", {"id": job["id"]})
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "max_ms": round(latencies[-1], 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default="127.0.0.1:7440")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    queue = f"bench-{run}"
    print(f"enqueue, one at a time:      {enqueue_sequential(args.broker, args.jobs, queue):8.0f} jobs/s")
    print(f"enqueue, 64 in flight:       {enqueue_pipelined(args.broker, args.jobs, queue):8.0f} jobs/s")
    print(f"reserve+ack, one at a time:  {reserve_ack_sequential(args.broker, 2 * args.jobs, queue):8.0f} jobs/s")
    print(f"wake-up latency ({args.rounds} jobs, 5 ms apart): {wake_latency(args.broker, args.rounds, f'wake-{run}')}")


if __name__ == "__main__":
    main()
