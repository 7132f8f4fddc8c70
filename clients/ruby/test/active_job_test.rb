# frozen_string_literal: true

require_relative "test_helper"
require "active_job"
require "active_job/queue_adapters/gantry_adapter"
require "gantry/active_job_worker"

ActiveJob::Base.logger = Logger.new(nil)

# Side effects of the jobs below, for the tests to see.
GANTRY_PERFORMED = Thread::Queue.new

class GantryGreetingJob < ActiveJob::Base
  def perform(name, options = {})
    GANTRY_PERFORMED << { "name" => name, "options" => options, "provider_job_id" => provider_job_id,
                          "queue" => queue_name, "at" => Time.now }
  end
end

class GantryFlakyError < StandardError; end

class GantryFlakyJob < ActiveJob::Base
  retry_on GantryFlakyError, wait: 0, attempts: 3

  def perform(token)
    raise GantryFlakyError, "first time fails" if executions == 1

    GANTRY_PERFORMED << { "name" => token, "executions" => executions }
  end
end

class GantryBrokenJob < ActiveJob::Base
  def perform
    raise IOError, "disk on fire"
  end
end

class GantryAlwaysError < StandardError; end

# retry_on owns this error: two executions, then the error is raised again.
class GantryGivesUpJob < ActiveJob::Base
  retry_on GantryAlwaysError, wait: 0, attempts: 2

  def perform(token)
    GANTRY_PERFORMED << { "name" => token, "executions" => executions, "provider_job_id" => provider_job_id }
    raise GantryAlwaysError, "still failing"
  end
end

# ActiveJob 7.1 has successfully_enqueued on every job; 6.1 does not, so the test job gets it here.
class GantryBatchJob < GantryGreetingJob
  attr_writer :successfully_enqueued unless method_defined?(:successfully_enqueued=)

  def successfully_enqueued?
    @successfully_enqueued
  end
end

class ActiveJobTest < Minitest::Test
  include GantryTest

  def setup
    @previous = ActiveJob::Base.queue_adapter
    @adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: url)
    ActiveJob::Base.queue_adapter = @adapter
    GANTRY_PERFORMED.clear
  end

  def teardown
    super
    ActiveJob::Base.queue_adapter = @previous
    @adapter.client.close
  end

  def active_job_worker(queues, **options)
    Gantry::ActiveJobWorker.new(url: url, queues: queues, id: "rb-aj-#{SecureRandom.hex(4)}", wait_ms: 500,
                                logger: QUIET_LOGGER, **options)
  end

  def test_perform_later_and_set_wait_arrive_in_gantry_and_the_worker_performs_them
    gantry = client
    queue = unique_queue("aj")
    now = Time.now
    job = GantryGreetingJob.set(queue: queue).perform_later("ana", { "lang" => "pt" })
    later = GantryGreetingJob.set(queue: queue, wait: 2).perform_later("bo")

    stored = gantry.job(job.provider_job_id)
    assert_equal ["active_job", queue, "available", 16_383], stored.values_at("type", "queue", "state", "priority")
    assert_equal "GantryGreetingJob", stored["args"]["job_class"]
    assert_equal job.job_id, stored["args"]["job_id"]
    assert_equal queue, stored["args"]["queue_name"]
    assert_equal "ana", stored["args"]["arguments"][0]

    scheduled = gantry.job(later.provider_job_id)
    assert_equal [queue, "scheduled"], scheduled.values_at("queue", "state")
    assert_in_delta now.to_f + 2, Time.iso8601(scheduled["run_at"]).to_f, 0.5

    thread = start_worker(active_job_worker([queue], concurrency: 2, max_jobs: 2))
    first = GANTRY_PERFORMED.pop
    assert_equal ["ana", { "lang" => "pt" }, job.provider_job_id, queue],
                 first.values_at("name", "options", "provider_job_id", "queue")
    second = GANTRY_PERFORMED.pop
    assert_equal ["bo", later.provider_job_id], second.values_at("name", "provider_job_id")
    assert_operator second["at"], :>=, now + 1.9, "the scheduled job ran early"
    assert thread.join(5)
    assert_equal "completed", gantry.job(job.provider_job_id)["state"]
    assert_equal "completed", gantry.job(later.provider_job_id)["state"]
  end

  def test_priority_maps_to_gantry_priority
    gantry = client
    queue = unique_queue("aj")
    assert_equal 10, gantry.job(GantryGreetingJob.set(queue: queue, priority: 10).perform_later("x").provider_job_id)["priority"]
    assert_equal 1, gantry.job(GantryGreetingJob.set(queue: queue, priority: -5).perform_later("x").provider_job_id)["priority"]
    assert_equal 32_767, gantry.job(GantryGreetingJob.set(queue: queue, priority: 99_999).perform_later("x").provider_job_id)["priority"]
    assert_nil ActiveJob::QueueAdapters::GantryAdapter.priority(nil)
  end

  def test_queue_adapter_by_name
    ActiveJob::Base.queue_adapter = :gantry # as config.active_job.queue_adapter = :gantry does; $GANTRY_URL
    assert_instance_of ActiveJob::QueueAdapters::GantryAdapter, ActiveJob::Base.queue_adapter
    queue = unique_queue("aj")
    job = GantryGreetingJob.set(queue: queue).perform_later("by name")
    assert_equal queue, client.job(job.provider_job_id)["queue"]
  ensure
    ActiveJob::Base.queue_adapter.client.close if ActiveJob::Base.queue_adapter.respond_to?(:client)
  end

  def test_retry_on_reenqueues_through_gantry_and_unhandled_errors_fail_the_gantry_job
    gantry = client
    queue = unique_queue("aj")
    flaky = GantryFlakyJob.set(queue: queue).perform_later("flaky")
    broken = GantryBrokenJob.set(queue: queue).perform_later
    thread = start_worker(active_job_worker([queue], max_jobs: 3))
    assert_equal({ "name" => "flaky", "executions" => 2 }, GANTRY_PERFORMED.pop)
    assert thread.join(10)
    # the first attempt was handled by retry_on: acked, and a new Gantry job carries the retry
    assert_equal "completed", gantry.job(flaky.provider_job_id)["state"]
    retried = gantry.jobs(queue: queue, type: "active_job")["jobs"].find do |j|
      j["args"]["job_id"] == flaky.job_id && j["id"] != flaky.provider_job_id
    end
    assert_equal "completed", retried["state"]
    failed = gantry.job(broken.provider_job_id)
    assert_equal ["scheduled", "IOError", "disk on fire"], [failed["state"], *failed["errors"].last.values_at("kind", "message")]
  end

  # retry_on and the broker's retries do not stack: once retry_on's attempts are spent, the Gantry job is dead at
  # once (the broker would otherwise run it max_attempts times more, each time raising again).
  def test_once_retry_on_gives_up_the_broker_does_not_retry
    gantry = client
    queue = unique_queue("aj")
    first = GantryGivesUpJob.set(queue: queue).perform_later("gives up")
    assert_equal 25, gantry.job(first.provider_job_id)["max_attempts"], "the broker's default is untouched"
    thread = start_worker(active_job_worker([queue], max_jobs: 2))
    runs = [GANTRY_PERFORMED.pop, GANTRY_PERFORMED.pop]
    assert thread.join(10)
    assert_equal [1, 2], runs.map { |run| run["executions"] }
    assert_equal "completed", gantry.job(first.provider_job_id)["state"] # retry_on enqueued the retry
    last = gantry.job(runs[1]["provider_job_id"])
    assert_equal ["dead", 1, "GantryAlwaysError", "still failing"],
                 [last["state"], last["attempt"], *last["errors"].last.values_at("kind", "message")]
    assert_equal 0, GANTRY_PERFORMED.size, "it ran again"
  end

  # A broker that accepts the connection and never answers: perform_later fails within the adapter's timeout.
  def test_perform_later_fails_within_the_timeout_when_the_broker_stalls
    server = TCPServer.new("127.0.0.1", 0)
    held = []
    acceptor = Thread.new { loop { held << server.accept } }
    ActiveJob::Base.queue_adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: "127.0.0.1:#{server.addr[1]}",
                                                                               timeout: 1)
    2.times do # the second call connects again, and times out again
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      error = assert_raises(Gantry::TimeoutError) { GantryGreetingJob.set(queue: "stalled").perform_later("x") }
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      assert_operator elapsed, :<, 1.5, "perform_later took #{elapsed} s"
      assert_operator elapsed, :>=, 0.9
      assert_match(%r{broker at gantry://127\.0\.0\.1:\d+ accepted the connection but did not answer hello within 1 s},
                   error.message)
    end
    assert_equal 2, held.size
  ensure
    ActiveJob::Base.queue_adapter.client.close
    acceptor&.kill
    server&.close
    held&.each(&:close)
  end

  # The broker answers hello, then stalls: the enqueue itself times out.
  def test_an_enqueue_without_an_answer_fails_within_the_timeout
    fake = GantryTest::FakeBroker.new do |request|
      GantryTest::FakeBroker.hello(request) if request["method"] == "hello" # and nothing else, ever
    end
    adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: fake.url, timeout: 0.5)
    ActiveJob::Base.queue_adapter = adapter
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    error = assert_raises(Gantry::TimeoutError) { GantryGreetingJob.set(queue: "stalled").perform_later("x") }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 1.0
    assert_match(/no answer to enqueue from the broker at gantry:\/\/127\.0\.0\.1:\d+ within 0\.5 s/, error.message)
  ensure
    adapter&.client&.close
    fake&.close
  end

  def test_timeout_is_the_adapters_own_and_defaults_to_five_seconds
    assert_equal 5, @adapter.client.timeout
    adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: url, timeout: 2, max_attempts: 3)
    adapter.on(:before_enqueue) { |job| job.meta["via"] = "the adapter's hook" } # before its client exists
    ActiveJob::Base.queue_adapter = adapter
    job = GantryGreetingJob.set(queue: unique_queue("aj")).perform_later("x")
    assert_equal 2, adapter.client.timeout
    assert_equal [3, { "via" => "the adapter's hook" }], client.job(job.provider_job_id).values_at("max_attempts", "meta")
  ensure
    adapter&.client&.close
  end

  def test_wait_until_is_sent_to_the_microsecond
    sent = Queue.new
    fake = GantryTest::FakeBroker.new do |request|
      next GantryTest::FakeBroker.hello(request) if request["method"] == "hello"

      sent << request["params"]["run_at"]
      GantryTest::FakeBroker.result(request, { "id" => "1", "state" => "scheduled" })
    end
    adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: fake.url)
    ActiveJob::Base.queue_adapter = adapter
    GantryGreetingJob.set(wait_until: Time.utc(2030, 1, 2, 3, 4, 9.25)).perform_later("x")
    assert_equal "2030-01-02T03:04:09.250000Z", sent.pop
    GantryGreetingJob.set(wait_until: Time.at(1_893_553_449, 123_456, :usec)).perform_later("x")
    assert_equal "2030-01-02T03:04:09.123456Z", sent.pop

    # and the broker takes them
    ActiveJob::Base.queue_adapter = @adapter
    at = Time.now + 3600 + 0.25
    job = GantryGreetingJob.set(queue: unique_queue("aj"), wait_until: at).perform_later("x")
    assert_in_delta at.to_f, Time.iso8601(client.job(job.provider_job_id)["run_at"]).to_f, 0.002
  ensure
    adapter&.client&.close
    fake&.close
  end

  # Rails 7.1's perform_all_later calls it; tested here on whatever ActiveJob is installed.
  def test_enqueue_all_sends_one_batch_and_marks_each_job
    gantry = client
    queue = unique_queue("aj")
    batches = []
    spy = Module.new do
      define_method(:enqueue_batch) { |jobs| batches << jobs.size && super(jobs) }
    end
    @adapter.client.singleton_class.prepend(spy)
    at = Time.now + 600
    jobs = [GantryBatchJob.new("a"), GantryBatchJob.new("b"), GantryBatchJob.new("c")]
    jobs.each { |job| job.queue_name = queue }
    jobs[1].scheduled_at = at.to_f # as 6.1's set(wait_until:) leaves it
    assert_equal 3, @adapter.enqueue_all(jobs)
    assert_equal [3], batches
    assert_equal [true] * 3, jobs.map(&:successfully_enqueued?)
    stored = jobs.map { |job| gantry.job(job.provider_job_id) }
    assert_equal [%w[a available], %w[b scheduled], %w[c available]],
                 stored.map { |job| [job["args"]["arguments"][0], job["state"]] }
    assert_equal 0, @adapter.enqueue_all([])

    refused = [GantryBatchJob.new("d"), GantryBatchJob.new("e")]
    refused.each { |job| job.queue_name = "not a queue name" }
    assert_raises(Gantry::InvalidParams) { @adapter.enqueue_all(refused) }
    assert_equal [false, false], refused.map(&:successfully_enqueued?)
    assert_equal [nil, nil], refused.map(&:provider_job_id)
  end

  def test_enqueue_after_transaction_commit_and_stopping
    assert @adapter.enqueue_after_transaction_commit?, "jobs wait for the application's commit"
    refute @adapter.stopping?

    queue = unique_queue("aj")
    seen = Thread::Queue.new
    go = Thread::Queue.new
    work = Gantry::Worker.new(url: url, queues: [queue], logger: QUIET_LOGGER, wait_ms: 300, handlers: {
                                "hold" => lambda do |_|
                                  seen << @adapter.stopping?
                                  go.pop
                                  seen << @adapter.stopping?
                                end,
                              })
    client.enqueue("hold", [], queue: queue)
    thread = start_worker(work)
    refute seen.pop, "stopping? before the stop"
    work.stop(timeout: 5)
    assert @adapter.stopping?
    go << true
    assert seen.pop, "stopping? while the stop drains"
    assert thread.join(10)
    refute @adapter.stopping?, "the worker has stopped"
  end
end
