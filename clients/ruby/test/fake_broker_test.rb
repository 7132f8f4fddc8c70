# frozen_string_literal: true

require_relative "test_helper"
require "stringio"

# What a real broker cannot be made to do on cue: refuse with -32004, answer in a chosen order, drop the
# connection at a chosen moment, ask an extend's caller to cancel.
class FakeBrokerTest < Minitest::Test
  include GantryTest
  Fake = GantryTest::FakeBroker

  def teardown
    super
    @fake&.close
  end

  def test_resends_a_request_the_broker_refused_with_nothing_applied
    refusals = 0
    @fake = Fake.new do |request|
      next Fake.hello(request) if request["method"] == "hello"

      if request["params"]["type"] == "unknown-outcome"
        Fake.error(request, -32_004, "outcome unknown", { "retryable" => true })
      elsif (refusals += 1) <= 2
        Fake.error(request, -32_004, "PostgreSQL is away", { "retryable" => true, "applied" => false })
      else
        Fake.result(request, { "id" => "7", "state" => "available" })
      end
    end
    gantry = client(url: @fake.url)
    assert_equal "7", gantry.enqueue("x")
    enqueues = @fake.seen.select { |r| r["method"] == "enqueue" }
    assert_equal 3, enqueues.size
    assert_equal 1, enqueues.map { |r| r["params"] }.uniq.size # the same request each time

    # applied absent: the outcome is unknown, so it is not resent
    error = assert_raises(Gantry::StorageUnavailable) { gantry.enqueue("unknown-outcome") }
    assert_equal [-32_004, "storage_unavailable"], [error.code, error.name]
    assert error.retryable?
    assert_equal 1, @fake.seen.count { |r| r.dig("params", "type") == "unknown-outcome" }
  end

  def test_resends_are_bounded
    @fake = Fake.new do |request|
      next Fake.hello(request) if request["method"] == "hello"

      Fake.error(request, -32_004, "PostgreSQL is away", { "retryable" => true, "applied" => false })
    end
    gantry = client(url: @fake.url, resend_delays: [0.01, 0.01, 0.01])
    assert_raises(Gantry::StorageUnavailable) { gantry.stats }
    assert_equal 4, @fake.seen.count { |r| r["method"] == "stats" }
  end

  def test_answers_out_of_order_reach_their_callers
    held = []
    @fake = Fake.new do |request, _fake, socket|
      next Fake.hello(request) if request["method"] == "hello"

      held << request
      next unless held.size == 3

      # answer the three pipelined requests last first, with a notification in between
      socket.write(JSON.generate({ "jsonrpc" => "2.0", "method" => "worker.quiet" }) + "\n")
      held.reverse.map { |r| Fake.result(r, { "echo" => r["params"]["n"] }) }
    end
    heard = Thread::Queue.new
    gantry = client(url: @fake.url, on_notification: ->(method, _) { heard << method })
    gantry.connect
    callers = Array.new(3) do |n|
      thread = Thread.new { gantry.call("echo", { "n" => n }) }
      eventually { @fake.seen.size == n + 2 } # hello, then the requests one by one
      thread
    end
    assert_equal [{ "echo" => 0 }, { "echo" => 1 }, { "echo" => 2 }], callers.map(&:value)
    assert_equal "worker.quiet", heard.pop
  end

  def test_hello_comes_first_on_every_connection
    @fake = Fake.new do |request, _fake, socket|
      if request["method"] == "hello"
        Fake.hello(request)
      elsif request["method"] == "drop"
        socket.close
        nil
      else
        Fake.result(request, {})
      end
    end
    gantry = client(url: @fake.url, name: "hello-test")
    gantry.stats
    assert_raises(Gantry::ConnectionError) { gantry.call("drop") }
    gantry.stats
    methods = @fake.seen.map { |r| r["method"] }
    assert_equal %w[hello stats drop hello stats], methods
    hello = @fake.seen.first["params"]
    assert_equal({ "client" => "hello-test", "protocol" => 1 }, hello)
    assert_equal 2, @fake.connections
  end

  def test_a_worker_reconnects_after_a_drop_and_says_hello_as_a_worker_again
    @fake = Fake.new do |request, fake, socket|
      case request["method"]
      when "hello" then Fake.hello(request)
      when "reserve"
        if fake.connections == 1
          socket.close # the broker goes away mid-poll
          nil
        else
          sleep 0.1
          Fake.result(request, { "jobs" => [] })
        end
      end
    end
    worker = Gantry::Worker.new(url: @fake.url, queues: ["q"], handlers: { "t" => ->(_) {} }, logger: QUIET_LOGGER)
    start_worker(worker)
    eventually(5, "the worker did not reconnect") { @fake.seen.count { |r| r["method"] == "reserve" } >= 3 }
    hellos = @fake.seen.select { |r| r["method"] == "hello" }
    assert_equal 2, hellos.size
    assert(hellos.all? { |h| h.dig("params", "worker", "id") == worker.id })
    assert_equal 2, @fake.connections
  end

  # A broker older than ack's ids form refuses it: the jobs of the refused ack, and every job after them, are
  # acked one by one.
  def test_a_worker_falls_back_to_lone_acks_when_the_broker_refuses_ids
    @fake = batching_fake(rounds: 2) do |request|
      Fake.error(request, -32_602, "Invalid params: ids is not a field of this method (fields: id, result).",
                 { "field" => "ids" })
    end
    assert run_batching_worker(rounds: 2).join(10), "the worker did not finish its jobs"
    acks = @fake.seen.select { |r| r["method"] == "ack" }.map { |r| r["params"] }
    together, lone = acks.partition { |params| params.key?("ids") }
    assert_equal 1, together.size, "after the refusal, no ack with ids"
    assert_equal 6, lone.size
    assert_equal((1..6).map { |n| [n.to_s, { "n" => n }] }, lone.map { |params| params.values_at("id", "result") }.sort)
  end

  # A job answered in an ack's lost is handled as a lone ack's lease_lost: logged, neither acked nor nacked again.
  def test_a_job_lost_in_an_ack_with_ids_is_a_lost_lease_and_the_others_are_done
    lost = nil
    @fake = batching_fake(rounds: 1) do |request|
      lost, *acked = request["params"]["ids"]
      Fake.result(request, { "ok" => false, "acked" => acked, "lost" => [{ "id" => lost, "state" => "available" }] })
    end
    log = StringIO.new
    assert run_batching_worker(rounds: 1, logger: Logger.new(log)).join(10), "the worker did not finish its jobs"
    assert_equal 1, @fake.seen.count { |r| r.dig("params", "ids") }
    assert_empty(@fake.seen.select { |r| r["method"] == "nack" })
    assert_match(/job #{lost}: lease lost/, log.string)
    refute_match(/job #{lost} quick done/, log.string)
    assert_equal 2, log.string.scan(/job \d quick done/).size
  end

  def test_call_timeout
    @fake = Fake.new { |request| Fake.hello(request) if request["method"] == "hello" }
    gantry = client(url: @fake.url)
    assert_raises(Gantry::TimeoutError) { gantry.call("stats", nil, timeout: 0.2) }
  end

  # A broker handing out `rounds` of three jobs (ids 1 to 3, then 4 to 6 once those are acked), that holds the
  # first lone ack of each round until that round's jobs all wait for their acks, and answers acks with ids with
  # the block.
  def batching_fake(rounds:, &answer_ids)
    rounds = Array.new(rounds) { |r| Array.new(3) { |n| fake_job((r * 3) + n + 1, "quick") } }
    handed_out = 0
    acked = []
    held = []
    Fake.new do |request|
      params = request["params"]
      case request["method"]
      when "hello" then Fake.hello(request)
      when "reserve"
        round = rounds[handed_out]
        previous_acked = handed_out.zero? || rounds[handed_out - 1].all? { |job| acked.include?(job["id"]) }
        if round && previous_acked && params["max"] >= round.size
          handed_out += 1
          Fake.result(request, { "jobs" => round })
        else
          sleep 0.05
          Fake.result(request, { "jobs" => [] })
        end
      when "ack"
        next answer_ids.call(request) if params.key?("ids")

        round = rounds.find { |jobs| jobs.any? { |job| job["id"] == params["id"] } }
        unless held.include?(round)
          held << round
          GantryTest.wait_until { GantryTest.waiting_for_acks?(round.map { |job| job["id"] }) }
        end
        acked << params["id"]
        Fake.result(request, { "ok" => true })
      end
    end
  end

  def run_batching_worker(rounds:, logger: QUIET_LOGGER)
    worker = Gantry::Worker.new(url: @fake.url, queues: ["q"], concurrency: 3, max_jobs: rounds * 3, logger: logger,
                                handlers: { "quick" => ->(args) { { "n" => args["n"] } } })
    start_worker(worker)
  end

  def fake_job(number, type)
    { "id" => number.to_s, "type" => type, "args" => { "n" => number }, "queue" => "q", "priority" => 1,
      "attempt" => 1, "max_attempts" => 25, "meta" => {}, "enqueued_at" => "2026-01-31T09:30:00.000Z",
      "lease_expires_at" => "2026-01-31T09:31:00.000Z" }
  end

  # The broker says in an extend's answer that an operator cancelled a running job: its handler's failure is
  # nacked with retry: false.
  def test_a_job_cancelled_while_it_runs_is_nacked_without_retry
    job = { "id" => "41", "type" => "slow", "args" => [], "queue" => "q", "priority" => 1, "attempt" => 1,
            "max_attempts" => 25, "meta" => {}, "enqueued_at" => "2026-01-31T09:30:00.000Z",
            "lease_expires_at" => "2026-01-31T09:31:00.000Z" }
    handed_out = false
    @fake = Fake.new do |request|
      case request["method"]
      when "hello" then Fake.hello(request)
      when "reserve"
        if handed_out
          sleep 0.2
          Fake.result(request, { "jobs" => [] })
        else
          handed_out = true
          Fake.result(request, { "jobs" => [job] })
        end
      when "extend"
        Fake.result(request, { "leases" => [{ "id" => "41", "lease_expires_at" => "2026-01-31T09:32:00.000Z",
                                              "cancel_requested" => true }], "lost" => [] })
      when "nack" then Fake.result(request, { "state" => "cancelled" })
      end
    end
    seen_cancelled = Thread::Queue.new
    handler = lambda do |_args, running|
      sleep 0.05 until running.cancelled?
      seen_cancelled << true
      raise "gave up: cancelled"
    end
    worker = Gantry::Worker.new(url: @fake.url, queues: ["q"], concurrency: 1, lease_ms: 1500, max_jobs: 1,
                                handlers: { "slow" => handler }, logger: QUIET_LOGGER)
    thread = start_worker(worker)
    assert seen_cancelled.pop
    assert thread.join(5)
    nack = @fake.seen.find { |r| r["method"] == "nack" }
    assert_equal false, nack["params"]["retry"]
    assert_equal "gave up: cancelled", nack["params"]["error"]["message"]
    hello = @fake.seen.find { |r| r["method"] == "hello" }["params"]["worker"]
    assert_equal({ "id" => worker.id, "queues" => ["q"], "concurrency" => 1, "handlers" => [{ "type" => "slow" }] }, hello)
  end
end
