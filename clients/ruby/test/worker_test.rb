# frozen_string_literal: true

require_relative "test_helper"

class WorkerTest < Minitest::Test
  include GantryTest

  def worker(queues, **options)
    Gantry::Worker.new(url: url, queues: queues, id: "rb-test-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER,
                       wait_ms: 500, **options)
  end

  # Records the acks the worker's client sends (as their params), holding its first lone ack until the jobs
  # `ids` all wait for theirs.
  def spy_on_acks(work, ids)
    sent = []
    held = false
    spy = Module.new do
      define_method(:ack) do |id, result = nil|
        sent << { "id" => id, "result" => result }
        GantryTest.wait_until { GantryTest.waiting_for_acks?(ids) } unless held
        held = true
        super(id, result)
      end
      define_method(:ack_many) do |many, results: nil|
        sent << { "ids" => many, "results" => results }
        super(many, results: results)
      end
    end
    work.instance_variable_get(:@client).singleton_class.prepend(spy)
    sent
  end

  def wait_state(gantry, id, state, timeout = 5)
    eventually(timeout, "job #{id} never became #{state}") { (job = gantry.job(id))["state"] == state && job }
  end

  def test_completes_jobs_with_the_handlers_result_up_to_concurrency_at_once
    gantry = client
    queue = unique_queue
    running = 0
    most = 0
    lock = Mutex.new
    handlers = {
      "sum" => ->(args) { args.sum },
      "slow" => lambda do |args, job|
        lock.synchronize { most = [most, running += 1].max }
        sleep 0.3
        lock.synchronize { running -= 1 }
        { "n" => args["n"], "id" => job.id, "attempt" => job.attempt }
      end,
    }
    ids = Array.new(6) { |n| gantry.enqueue("slow", { "n" => n }, queue: queue) }
    sum = gantry.enqueue("sum", [1, 2, 3], queue: queue)
    work = worker([queue], concurrency: 3, handlers: handlers, max_jobs: 7)
    thread = start_worker(work)
    assert thread.join(10), "the worker did not finish its 7 jobs"
    assert_equal :stopped, work.state
    ids.each_with_index do |id, n|
      assert_equal [{ "n" => n, "id" => id, "attempt" => 1 }, "completed"], gantry.job(id).values_at("result", "state")
    end
    assert_equal 6, gantry.job(sum)["result"]
    assert_equal 3, most, "expected three jobs at once"
  end

  def test_completes_many_quick_jobs_with_their_own_results
    gantry = client
    queue = unique_queue
    ids = gantry.enqueue_batch(Array.new(40) { |n| { type: "quick", args: [n], queue: queue } })
    work = worker([queue], concurrency: 5, handlers: { "quick" => ->(args) { { "n" => args[0] } } }, max_jobs: 40)
    assert start_worker(work).join(20), "the worker did not finish its 40 jobs"
    ids.each_with_index do |id, n|
      assert_equal [{ "n" => n }, "completed"], gantry.job(id).values_at("result", "state")
    end
  end

  # The first job's ack is held (by a spy on the worker's client) until the other jobs have finished too: they
  # must then go together, in one ack with ids.
  def test_jobs_finishing_while_an_ack_is_in_flight_are_acked_together
    gantry = client
    queue = unique_queue
    ids = gantry.enqueue_batch(Array.new(6) { |n| { type: "quick", args: [n], queue: queue } })
    started = Thread::Queue.new
    go = Thread::Queue.new
    handler = lambda do |args|
      started << true
      go.pop
      args[0].even? ? { "n" => args[0] } : nil
    end
    work = worker([queue], concurrency: 6, handlers: { "quick" => handler }, max_jobs: 6)
    thread = start_worker(work)
    sent = spy_on_acks(work, ids)
    6.times { started.pop }
    go.close # every handler returns at once
    assert thread.join(10), "the worker did not finish its 6 jobs"

    ids.each_with_index do |id, n|
      assert_equal [n.even? ? { "n" => n } : nil, "completed"], gantry.job(id).values_at("result", "state")
    end
    lone, together = sent.partition { |ack| ack.key?("id") }
    refute_empty together, "no ack with ids was sent"
    assert_equal ids.sort, (lone.map { |ack| ack["id"] } + together.flat_map { |ack| ack["ids"] }).sort
  end

  def test_announces_itself_in_hello
    queue = unique_queue
    work = worker([queue, "#{queue}-low"], concurrency: 4, handlers: { "a" => ->(_) {}, "b" => ->(_) {} })
    start_worker(work)
    listed = client.workers.find { |w| w["session_id"] == work.session_id }
    assert_equal [work.id, [queue, "#{queue}-low"], 4, %w[a b], "running"],
                 listed.values_at("id", "queues", "concurrency", "handlers", "state")
  end

  def test_reserves_from_queues_in_order
    gantry = client
    queue = unique_queue
    order = Thread::Queue.new
    gantry.enqueue("t", ["low"], queue: "#{queue}-low")
    gantry.enqueue("t", ["high"], queue: queue)
    work = worker([queue, "#{queue}-low"], concurrency: 1, handlers: { "t" => ->(args) { order << args[0] } },
                                           max_jobs: 2)
    assert start_worker(work).join(10)
    assert_equal %w[high low], [order.pop, order.pop]
  end

  def test_failures_are_nacked_with_message_kind_and_backtrace
    gantry = client
    queue = unique_queue
    handlers = {
      "boom" => ->(_) { raise ArgumentError, "bad args" },
      "fatal" => ->(_) { raise Gantry::PermanentError, "never works" },
    }
    boom = gantry.enqueue("boom", [], queue: queue)
    fatal = gantry.enqueue("fatal", [], queue: queue)
    unknown = gantry.enqueue("nobody.handles", [], queue: queue)
    assert start_worker(worker([queue], handlers: handlers, max_jobs: 3)).join(10)

    failed = gantry.job(boom)
    assert_equal "scheduled", failed["state"]
    error = failed["errors"].last
    assert_equal ["bad args", "ArgumentError", "nack"], error.values_at("message", "kind", "reason")
    assert_match(/worker_test\.rb/, error["backtrace"].first)

    dead = gantry.job(fatal)
    assert_equal ["dead", "Gantry::PermanentError"], [dead["state"], dead["errors"].last["kind"]]

    skipped = gantry.job(unknown)
    assert_equal ["scheduled", "Gantry::Worker::UnknownJobType"], [skipped["state"], skipped["errors"].last["kind"]]
  end

  def test_buries_a_job_on_its_last_attempt
    gantry = client
    queue = unique_queue
    id = gantry.enqueue("boom", [], queue: queue, max_attempts: 1)
    assert start_worker(worker([queue], handlers: { "boom" => ->(_) { raise "no" } }, max_jobs: 1)).join(10)
    assert_equal ["dead", 1, "RuntimeError"], gantry.job(id).then { |j| [j["state"], j["attempt"], j["errors"].last["kind"]] }
  end

  def test_extends_leases_of_long_jobs
    gantry = client
    queue = unique_queue
    id = gantry.enqueue("long", [], queue: queue)
    # a 1.2 s lease, a 3 s job: only extends (every 0.4 s) keep it
    work = worker([queue], lease_ms: 1200, handlers: { "long" => ->(_) { sleep 3; "done" } }, max_jobs: 1)
    assert start_worker(work).join(10)
    job = gantry.job(id)
    assert_equal ["completed", "done", []], job.values_at("state", "result", "errors")
  end

  def test_an_operator_cancel_while_running_ends_the_job_cancelled
    gantry = client
    queue = unique_queue
    id = gantry.enqueue("long", [], queue: queue)
    started = Thread::Queue.new
    handler = lambda do |_args, job|
      started << true
      sleep 0.05 until job.cancelled?
      raise "stopped: cancelled"
    end
    work = worker([queue], lease_ms: 1200, handlers: { "long" => handler }, max_jobs: 1)
    thread = start_worker(work)
    started.pop
    assert_equal "reserved", gantry.cancel_job(id)["state"]
    assert thread.join(5)
    assert_equal "cancelled", gantry.job(id)["state"]
  end

  def test_quiet_finishes_running_jobs_reserves_nothing_more_and_keeps_running
    gantry = client
    queue = unique_queue
    release = Thread::Queue.new
    running = gantry.enqueue("hold", [], queue: queue)
    work = worker([queue], concurrency: 2, handlers: { "hold" => ->(_) { release.pop } })
    thread = start_worker(work)
    wait_state(gantry, running, "reserved")
    assert_equal 1, client.quiet_workers(work.id)
    eventually { work.quiet? }
    later = gantry.enqueue("hold", [], queue: queue)
    release << true
    wait_state(gantry, running, "completed")
    sleep 1.2 # more than one long poll
    assert_equal "available", gantry.job(later)["state"]
    assert thread.alive?, "a quiet worker keeps running until stopped"
    assert_equal "quiet", gantry.workers.find { |w| w["session_id"] == work.session_id }["state"]

    assert_equal 1, client.stop_workers(work.id)
    assert thread.join(5), "worker.stop did not end run"
    assert_equal "available", gantry.job(later)["state"]
  end

  def test_stop_hands_running_jobs_back_and_returns
    gantry = client
    queue = unique_queue
    interrupted = Thread::Queue.new
    handler = lambda do |_|
      sleep 30
    rescue Gantry::WorkerStopped
      interrupted << true
      raise
    end
    ids = Array.new(2) { gantry.enqueue("hold", [], queue: queue) }
    work = worker([queue], concurrency: 2, handlers: { "hold" => handler })
    thread = start_worker(work)
    ids.each { |id| wait_state(gantry, id, "reserved") }
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_equal 1, client.stop_workers(work.session_id)
    assert thread.join(5), "worker.stop did not end run"
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 3
    ids.each do |id|
      job = gantry.job(id)
      assert_equal "available", job["state"]
      assert_equal ["WorkerStopped", "nack"], job["errors"].last.values_at("kind", "reason")
    end
    assert_equal [true, true], [interrupted.pop, interrupted.pop]
    refute(gantry.workers.any? { |w| w["session_id"] == work.session_id }, "the worker's connection is closed")
  end

  def test_local_stop_with_a_timeout_lets_running_jobs_finish
    gantry = client
    queue = unique_queue
    id = gantry.enqueue("short", [], queue: queue)
    started = Thread::Queue.new
    work = worker([queue], handlers: { "short" => ->(_) { started << true; sleep 0.5; "finished" } })
    thread = start_worker(work)
    started.pop
    work.stop(timeout: 5)
    assert thread.join(5)
    assert_equal %w[completed finished], gantry.job(id).values_at("state", "result")
  end
end
