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
end
