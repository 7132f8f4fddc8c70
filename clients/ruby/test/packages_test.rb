# frozen_string_literal: true

require_relative "test_helper"

# Packages and their executions (packages.upsert/list/get/delete/run/executions, executions.save/saved, a job's
# `package`), through the client and the worker. Packages, subscriptions and event types are global to the
# broker: each test names them with a suffix of its own, and deletes its packages and subscriptions at the end.
class PackagesTest < Minitest::Test
  include GantryTest

  def setup
    super
    @suffix = SecureRandom.hex(4)
    @packages = []
    @subscriptions = []
  end

  def teardown
    gantry = client # connects only if there is something to delete
    # subscriptions first: the broker keeps a package a subscription targets
    @subscriptions.each { |name| ignore_not_found { gantry.delete_subscription(name) } }
    @packages.each { |name| ignore_not_found { gantry.delete_package(name) } }
    super
  end

  def ignore_not_found
    yield
  rescue Gantry::NotFound
    nil
  end

  # A package name of this test's own (deleted at teardown): "rb.<rest>.<suffix>".
  def package_name(rest)
    name = "rb.#{rest}.#{@suffix}"
    @packages << name
    name
  end

  def worker(queues, **options)
    Gantry::Worker.new(url: url, queues: queues, id: "rb-pkg-test-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER,
                       wait_ms: 500, **options)
  end

  def wait_execution(gantry, name, id, state, timeout = 10)
    eventually(timeout, "execution #{id} of #{name} never became #{state}") do
      execution = gantry.package_executions(name)["executions"].find { |e| e["id"] == id }
      execution && execution["state"] == state && execution
    end
  end

  def test_run_with_a_config_override_then_executions_save_and_refusals
    gantry = client
    queue = unique_queue
    name = package_name("report")
    upserted = gantry.upsert_package(name, steps: %w[report.fetch report.mail], config: { "region" => "eu" },
                                           description: "The nightly report", queue: queue)
    assert_equal true, upserted["created"]
    package = upserted["package"]
    assert_equal [name, "The nightly report", { "region" => "eu" }, queue, true, "rpc"],
                 package.values_at("name", "description", "config", "queue", "active", "source")
    assert_equal({ "manual" => true, "timezone" => "UTC" }, package["triggers"].slice("manual", "timezone"))
    assert_equal [%w[report.fetch] + [queue], %w[report.mail] + [queue]],
                 package["steps"].map { |s| s.values_at("type", "queue") } # the defaults filled in
    assert_equal package, gantry.package(name)
    assert_equal package, gantry.packages.find { |p| p["name"] == name }
    assert_equal false, gantry.upsert_package(name, steps: %w[report.fetch report.mail], config: { "region" => "eu" },
                                                    description: "The nightly report", queue: queue)["created"]

    run = gantry.run_package(name, config: { "region" => "us" })
    assert_equal [name, "running"], run.values_at("package", "state")
    id = run["id"]

    first = gantry.reserve(queue).first
    assert_equal "report.fetch", first.type
    assert_equal({ "name" => name, "config" => { "region" => "us" } }, first.package) # the run's override
    assert_equal "us", first.package["config"]["region"]
    assert_equal first.package, first["package"]
    assert_equal [id, name, "main", "report.fetch", 0],
                 first.operation.values_at("id", "name", "branch", "step", "index")
    gantry.ack(first, { "rows" => 1200 })

    second = gantry.reserve(queue, wait_ms: 5_000).first
    assert_equal ["report.mail", 1, { "name" => name, "config" => { "region" => "us" } }],
                 [second.type, second.operation["index"], second.package]
    gantry.ack(second)

    execution = wait_execution(gantry, name, id, "completed")
    assert_equal [name, "manual", { "region" => "us" }], execution.values_at("package", "trigger", "config")
    assert_equal [[0, "report.fetch", "completed", first.id, { "rows" => 1200 }],
                  [1, "report.mail", "completed", second.id, nil]],
                 execution["steps"].map { |s| s.values_at("index", "type", "state", "job_id", "result") }
    assert_equal "completed", gantry.operation(run)["state"] # an execution is an operation
    assert_equal({ "region" => "eu" }, gantry.package(name)["config"]) # the override was for that run only

    saved = gantry.save_execution(run, name: "baseline-#{@suffix}", description: "Before the price change")
    assert_equal [id, "baseline-#{@suffix}", "Before the price change"],
                 [saved["id"], saved["saved"]["name"], saved["saved"]["description"]]
    Time.iso8601(saved["saved"]["saved_at"])
    mine = gantry.saved_executions(package: name)
    assert_equal [id], mine.map { |e| e["id"] }
    assert_equal [{ "rows" => 1200 }], mine.map { |e| e["steps"][0]["result"] }
    assert_includes gantry.saved_executions.map { |e| e["id"] }, id

    error = assert_raises(Gantry::InvalidParams) { gantry.run_package(name, config: { "regoin" => "us" }) }
    assert_equal [-32_602, "invalid_params", "config.regoin"], [error.code, error.name, error.field]
    assert_match(/region/, error.message) # it names the keys there are
    assert_equal [id], gantry.package_executions(name)["executions"].map { |e| e["id"] } # nothing was started

    assert_equal({ "deleted" => true }, gantry.delete_package(name))
    assert_raises(Gantry::NotFound) { gantry.package(name) }
    refute(gantry.packages.any? { |p| p["name"] == name })
    assert_raises(Gantry::NotFound) { gantry.run_package(name) }
    assert_raises(Gantry::NotFound) { gantry.delete_package(name) }
    assert_equal [id], gantry.saved_executions(package: name).map { |e| e["id"] } # saved outlives its package
  end

  def test_a_worker_handler_reads_the_package_config
    gantry = client
    queue = unique_queue
    name = package_name("greet")
    seen = Thread::Queue.new
    handlers = {
      "greet.pick" => lambda do |_args, job|
        seen << [job.type, job.package]
        Gantry::StepResult.new(set: { "greeting" => job.package["config"]["greeting"] })
      end,
      "greet.send" => lambda do |_args, job|
        seen << [job.type, job.package]
        "#{job.operation["globals"]["greeting"]}, #{job.package["config"]["to"]}"
      end,
      "plain" => ->(_args, job) { seen << [job.type, job.package] },
    }
    gantry.upsert_package(name, steps: ["greet.pick", { type: "greet.send", max_attempts: 2 }], queue: queue,
                                config: { "greeting" => "hello", "to" => "world" })
    run = gantry.run_package(name, config: { "to" => "Ana" })
    gantry.enqueue("plain", [], queue: queue)
    start_worker(worker([queue], handlers: handlers))

    execution = wait_execution(gantry, name, run["id"], "completed")
    config = { "greeting" => "hello", "to" => "Ana" }
    seen = Array.new(3) { seen.pop }.sort_by(&:first)
    assert_equal [["greet.pick", { "name" => name, "config" => config }],
                  ["greet.send", { "name" => name, "config" => config }], ["plain", nil]], seen
    assert_equal "hello, Ana", execution["steps"][1]["result"]
    assert_equal({ "greeting" => "hello" }, execution["globals"])
  end

  def test_events_start_executions
    gantry = client
    queue = unique_queue
    type = "rb#{@suffix}.report.requested"
    name = package_name("on-event")
    gantry.upsert_package(name, steps: ["report.build"], config: { "region" => "eu" }, queue: queue,
                                triggers: { events: ["rb#{@suffix}.report.*"], manual: false })
    subscription = "rb-report-#{@suffix}"
    @subscriptions << subscription
    target = gantry.upsert_subscription(subscription, event: type, target: { package: name,
                                                                            config: { "region" => "jp" } })
    assert_equal({ "package" => name, "config" => { "region" => "jp" } },
                 target["subscription"]["target"].slice("package", "config"))

    published = gantry.publish(type, { "n" => 1 })
    triggered = published["triggered"].select { |t| t["package"] == name }
    # one by the package's triggers.events (no subscription), one by the subscription
    assert_equal [nil, subscription], triggered.map { |t| t["subscription"] }.sort_by(&:to_s)
    assert(triggered.all? { |t| t["operation_id"] && !t.key?("skipped") }, triggered.inspect)

    jobs = gantry.reserve(queue, max: 10, wait_ms: 5_000)
    jobs += gantry.reserve(queue, max: 10, wait_ms: 1_000) if jobs.size < 2
    assert_equal [{ "region" => "eu" }, { "region" => "jp" }], jobs.map { |j| j.package["config"] }.sort_by(&:to_s)
    event = { "id" => published["id"], "type" => type, "payload" => { "n" => 1 } }
    assert(jobs.all? { |j| j.operation["globals"]["event"] == event })
    jobs.each { |job| gantry.ack(job) }
    executions = gantry.package_executions(name, limit: 1)
    assert_equal ["event"], executions["executions"].map { |e| e["trigger"] }
    rest = gantry.package_executions(name, limit: 10, cursor: executions["next_cursor"])
    assert_equal 1, rest["executions"].size

    # manual: false, so not by hand; and kept while a subscription targets it
    error = assert_raises(Gantry::WrongState) { gantry.run_package(name) }
    assert_equal(-32_008, error.code)
    error = assert_raises(Gantry::WrongState) { gantry.delete_package(name) }
    assert_equal [subscription], error.data["subscriptions"]

    # an inactive package starts nothing: its triggers.events match no more, and the subscription's is skipped
    gantry.upsert_package(name, steps: ["report.build"], config: { "region" => "eu" }, queue: queue, active: false,
                                triggers: { events: ["rb#{@suffix}.report.*"] })
    skipped = gantry.publish(type)["triggered"].select { |t| t["package"] == name }
    assert_equal [subscription], skipped.map { |t| t["subscription"] }
    assert_kind_of String, skipped[0]["skipped"]
    refute skipped[0].key?("operation_id")
    assert_equal [], gantry.reserve(queue)
  end

  def test_refusals
    gantry = client
    name = package_name("refused")
    error = assert_raises(Gantry::InvalidParams) { gantry.upsert_package(name, steps: ["x"], config: "fast") }
    assert_equal [-32_602, "config"], [error.code, error.field]
    error = assert_raises(Gantry::InvalidParams) do
      gantry.upsert_package(name, steps: ["x"], triggers: { cron: "not a cron" })
    end
    assert_equal "triggers.cron", error.field
    error = assert_raises(Gantry::InvalidParams) { gantry.upsert_package(name, steps: []) }
    assert_match(/\Asteps/, error.field)
    assert_raises(Gantry::NotFound) { gantry.package(name) } # nothing was stored
    error = assert_raises(Gantry::InvalidParams) do
      gantry.upsert_subscription("rb-nopkg-#{@suffix}", event: "rb#{@suffix}.x", target: { package: name })
    end
    assert_equal "target.package", error.field
    assert_raises(Gantry::NotFound) { gantry.save_execution("987654321", name: "nothing") }
  end
end
