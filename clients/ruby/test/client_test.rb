# frozen_string_literal: true

require_relative "test_helper"

class ClientTest < Minitest::Test
  include GantryTest

  def test_address_forms
    assert_equal ["127.0.0.1", 7440], Gantry::Client.address("127.0.0.1:7440")
    assert_equal ["jobs.internal", 7000], Gantry::Client.address("gantry://jobs.internal:7000")
    assert_equal ["::1", 7441], Gantry::Client.address("[::1]:7441")
    assert_equal ["localhost", 7440], Gantry::Client.address("gantry://localhost")
    assert_raises(ArgumentError) { Gantry::Client.address("http://x:1/y") }
  end

  def test_enqueue_and_job_round_trip
    gantry = client
    queue = unique_queue
    run_at = Time.now + 3600
    id = gantry.enqueue("email.send", { "to" => "ana@example.com", "n" => [1, 2.5, nil, true] },
                        queue: queue, priority: 100, run_at: run_at, max_attempts: 3, timeout_ms: 60_000,
                        tags: ["welcome"], meta: { "trace" => "t-1" }, unique_key: "u-1")
    assert_kind_of String, id
    job = gantry.job(id)
    assert_equal id, job["id"]
    assert_equal "email.send", job["type"]
    assert_equal({ "to" => "ana@example.com", "n" => [1, 2.5, nil, true] }, job["args"])
    assert_equal queue, job["queue"]
    assert_equal 100, job["priority"]
    assert_equal 3, job["max_attempts"]
    assert_equal 60_000, job["timeout_ms"]
    assert_equal ["welcome"], job["tags"]
    assert_equal({ "trace" => "t-1" }, job["meta"])
    assert_equal "scheduled", job["state"]
    # We send milliseconds; the broker's timestamp parsing/formatting (Date.ISO8601FormatStyle) gives some back
    # 1-2 ms early (".033Z" comes back ".031Z"), hence 5 ms rather than 1.
    assert_in_delta run_at.to_f, Time.iso8601(job["run_at"]).to_f, 0.005

    defaults = gantry.job(gantry.enqueue("noop"))
    assert_equal ["default", 16_383, 25, [], "available"], defaults.values_at("queue", "priority", "max_attempts", "args", "state")

    delayed = gantry.job(gantry.enqueue("later", [1], queue: queue, delay_ms: 60_000))
    assert_equal "scheduled", delayed["state"]
    assert_in_delta Time.now.to_f + 60, Time.iso8601(delayed["run_at"]).to_f, 5

    ids = gantry.enqueue_batch([{ type: "b", args: [1], queue: queue }, { "type" => "b", "queue" => queue, "priority" => 5 }])
    assert_equal 2, ids.size
    assert_equal [[1], 16_383], gantry.job(ids[0]).values_at("args", "priority")
    assert_equal [[], 5], gantry.job(ids[1]).values_at("args", "priority")
  end

  def test_errors_carry_code_name_field_and_data
    gantry = client
    error = assert_raises(Gantry::InvalidParams) { gantry.enqueue("x", [], priority: 0) }
    assert_equal [-32_602, "invalid_params", "priority"], [error.code, error.name, error.field]
    assert_match(/priority/, error.message)
    assert_kind_of Gantry::RPCError, error
    refute error.retryable?

    error = assert_raises(Gantry::InvalidParams) { gantry.enqueue("x", [], delay: 5) }
    assert_equal "delay", error.field

    error = assert_raises(Gantry::InvalidParams) do
      gantry.enqueue_batch([{ type: "ok" }, { type: "bad", queue: "no spaces allowed" }])
    end
    assert_equal "jobs[1].queue", error.field

    error = assert_raises(Gantry::NotFound) { gantry.job("987654321") }
    assert_equal [-32_002, "not_found", { "id" => "987654321" }], [error.code, error.name, error.data]

    error = assert_raises(Gantry::MethodNotFound) { gantry.call("jobs.fetch", { "id" => "1" }) }
    assert_equal [-32_601, "method_not_found", { "method" => "jobs.fetch" }], [error.code, error.name, error.data]

    id = gantry.enqueue("x", [], queue: unique_queue)
    error = assert_raises(Gantry::LeaseLost) { gantry.ack(id) }
    assert_equal [-32_003, "lease_lost", "available"], [error.code, error.name, error.data["state"]]

    error = assert_raises(Gantry::WrongState) { gantry.retry_job(id) }
    assert_equal [-32_008, "wrong_state"], [error.code, error.name]

    error = assert_raises(Gantry::InvalidParams) { gantry.call("stats", { "verbose" => true }) }
    assert_equal "verbose", error.field
  end

  def test_reserve_ack_nack_extend
    gantry = client
    queue = unique_queue
    first = gantry.enqueue("work", { "n" => 1 }, queue: queue, max_attempts: 2)
    second = gantry.enqueue("work", { "n" => 2 }, queue: queue)
    jobs = gantry.reserve([queue], max: 10, wait_ms: 1000, lease_ms: 5000)
    assert_equal [first, second], jobs.map(&:id)
    job = jobs.first
    assert_equal ["work", { "n" => 1 }, queue, 1, 2], [job.type, job.args, job.queue, job.attempt, job.max_attempts]
    assert_equal({}, job.meta)

    extended = gantry.extend(jobs.map(&:id) + ["987654321"], lease_ms: 10_000)
    assert_equal [first, second].sort, extended["leases"].map { |lease| lease["id"] }.sort
    assert_equal ["987654321"], extended["lost"]

    begin
      raise ArgumentError, "bad input"
    rescue ArgumentError => e
      assert_equal "scheduled", gantry.nack(job, e)["state"]
    end
    failed = gantry.job(first)
    error = failed["errors"].last
    assert_equal ["bad input", "ArgumentError", "nack"], error.values_at("message", "kind", "reason")
    assert_kind_of Array, error["backtrace"]
    assert_match(/client_test\.rb/, error["backtrace"].first)

    assert_equal({ "ok" => true }, gantry.ack(second, { "sent" => true }))
    assert_equal [{ "sent" => true }, "completed"], gantry.job(second).values_at("result", "state")

    third = gantry.enqueue("work", [], queue: queue)
    gantry.reserve(queue, wait_ms: 1000)
    assert_equal "available", gantry.nack(third, "try again now", retry_in_ms: 0)["state"]
    gantry.reserve(queue, wait_ms: 1000)
    assert_equal "dead", gantry.nack(third, { message: "no use", kind: "Fatal" }, retry: false)["state"]
    assert_equal [2, "dead"], gantry.job(third).values_at("attempt", "state")
  end

  def test_ack_many_acks_several_in_one_request_and_answers_lost_ones
    gantry = client
    queue = unique_queue
    gantry.enqueue_batch(Array.new(3) { { type: "many", queue: queue } })
    first, second, third = gantry.reserve(queue, max: 3, wait_ms: 1000)

    answer = gantry.ack_many([first, second.id], results: { first => { "sent" => true } })
    assert_equal({ "ok" => true, "acked" => [first.id, second.id], "lost" => [] }, answer)
    assert_equal [{ "sent" => true }, "completed"], gantry.job(first.id).values_at("result", "state")
    assert_equal [nil, "completed"], gantry.job(second.id).values_at("result", "state")

    # already acked, and no such job: both answered in lost, and the third is acked all the same
    answer = gantry.ack_many([third, first, "987654321"])
    assert_equal [false, [third.id]], answer.values_at("ok", "acked")
    assert_equal [{ "id" => first.id, "state" => "completed" }, { "id" => "987654321" }], answer["lost"]
    assert_equal "completed", gantry.job(third.id)["state"]

    error = assert_raises(Gantry::InvalidParams) { gantry.ack_many([third, third]) }
    assert_equal "ids[1]", error.field
  end

  def test_concurrent_calls_from_threads_share_one_connection
    gantry = client
    queue = unique_queue
    session = gantry.connect.session_id
    ids = Array.new(16) { |t| Thread.new { Array.new(10) { |i| gantry.enqueue("c", [t, i], queue: queue) } } }
                .flat_map(&:value)
    assert_equal 160, ids.uniq.size
    assert_equal 160, gantry.stats.dig("queues", queue, "counts", "available")
    assert_equal session, gantry.session_id # all on the one connection
  end

  def test_a_waiting_long_poll_does_not_hold_up_other_calls
    gantry = client
    queue = unique_queue
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    poll = Thread.new { gantry.reserve(queue, wait_ms: 3000) }
    sleep 0.1
    ids = Array.new(5) { gantry.enqueue("x", [], queue: "#{queue}-other") }
    quick = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    assert_operator quick, :<, 2, "calls behind a waiting reserve were answered only after it"
    assert poll.alive?
    id = gantry.enqueue("wake", [], queue: queue)
    assert_equal [id], poll.value.map(&:id)
    assert_equal 5, ids.size
  end

  def test_reconnects_on_the_next_call_after_a_drop
    gantry = client
    gantry.stats
    first_session = gantry.session_id
    # A line over the broker's 1 MiB limit: it answers -32006 (id null) and closes the connection.
    error = assert_raises(Gantry::ConnectionError) { gantry.enqueue("big", ["x" * (1024 * 1024 + 10)]) }
    assert_match(/longer than the broker's limit/, error.message)
    refute gantry.connected?
    assert gantry.stats["broker"]
    refute_equal first_session, gantry.session_id
    assert gantry.connected?
  end

  def test_a_forked_child_opens_its_own_connection
    gantry = client
    parent_session = gantry.connect.session_id
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      gantry.stats
      writer.write(gantry.session_id)
      writer.close
      exit!(0)
    end
    writer.close
    child_session = reader.read
    Process.wait(pid)
    assert $?.success?
    refute_equal parent_session, child_session
    assert_equal parent_session, gantry.session_id
    assert gantry.stats # the parent's connection still works
  end

  def test_cannot_connect_is_a_connection_error
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    server.close
    error = assert_raises(Gantry::ConnectionError) { Gantry::Client.new(url: "127.0.0.1:#{port}").stats }
    assert_match(/cannot connect/, error.message)
  end

  def test_broker_notifications_go_to_the_callback_not_to_callers
    heard = Thread::Queue.new
    worker_id = "notified-#{SecureRandom.hex(4)}"
    queue = unique_queue
    listener = client(worker: { "id" => worker_id, "queues" => [queue], "concurrency" => 1 },
                      on_notification: ->(method, params) { heard << [method, params] })
    listener.connect
    poll = Thread.new { listener.reserve(queue, wait_ms: 1500) }
    sleep 0.2
    assert_equal 1, client.quiet_workers(listener.session_id)
    assert_equal ["worker.quiet", nil], heard.pop
    assert_equal [], poll.value # the waiting reserve got its own answer, empty since the worker is quiet
    assert_equal "quiet", client.workers.find { |w| w["session_id"] == listener.session_id }["state"]
    assert_equal 1, client.stop_workers(worker_id)
    assert_equal ["worker.stop", nil], heard.pop
    assert listener.stats # calls still work after notifications
  end

  def test_admin_helpers
    gantry = client
    queue = unique_queue
    assert_equal({ "paused" => true, "queue" => queue }, gantry.pause_queue(queue))
    assert gantry.queues.dig(queue, "paused")
    waiting = gantry.enqueue("x", [], queue: queue)
    assert_equal [], gantry.reserve(queue, wait_ms: 100)
    assert_equal false, gantry.resume_queue(queue)["paused"]

    page = gantry.jobs(queue: queue, state: "available", limit: 10)
    assert_equal [waiting], page["jobs"].map { |job| job["id"] }
    assert_equal "cancelled", gantry.cancel_job(waiting)["state"]
    assert_equal "available", gantry.retry_job(waiting)["state"]
    assert_equal({ "discarded" => true, "id" => waiting }, gantry.discard_job(waiting))
    assert_raises(Gantry::NotFound) { gantry.job(waiting) }

    done = gantry.enqueue("x", [], queue: queue)
    gantry.reserve(queue, wait_ms: 1000)
    gantry.ack(done)
    assert_equal({ "deleted" => 1, "more" => false }, gantry.cleanup(older_than_ms: 0, queue: queue))
    assert_equal 0, gantry.quiet_workers("nobody-#{SecureRandom.hex(4)}")
    assert_raises(Gantry::InvalidParams) { gantry.stop_workers }
    stats = gantry.stats
    assert_operator stats.dig("broker", "connections"), :>=, 1
    assert_equal 1, gantry.call("stats", {})["queues"].dig(queue, "processed")
  end
end
