# frozen_string_literal: true

require_relative "test_helper"

# Events and subscriptions (events.publish/get/list/replay, subscriptions.upsert/list/delete/pause/resume).
# Subscriptions are global to the broker: each test names its subscriptions and event types with a suffix of its
# own, looks only at what its own subscriptions triggered, and deletes them at the end (teardown).
class EventsTest < Minitest::Test
  include GantryTest

  def setup
    super
    @suffix = SecureRandom.hex(4)
    @subscriptions = {} # name => the client of its broker
  end

  def teardown
    @subscriptions.each do |name, gantry|
      gantry.delete_subscription(name)
    rescue Gantry::NotFound
      nil
    end
    super
  end

  # An event type of this test's own: "rb<suffix>.<rest>".
  def event_type(rest)
    "rb#{@suffix}.#{rest}"
  end

  # Upserts a subscription named "rb-<name>-<suffix>" (deleted at teardown); returns its name.
  def subscribe(gantry, name, **options)
    name = "rb-#{name}-#{@suffix}"
    @subscriptions[name] = gantry
    gantry.upsert_subscription(name, **options)
    name
  end

  # What this test's subscriptions triggered, by subscription name.
  def mine(triggered)
    triggered.select { |trigger| @subscriptions.key?(trigger["subscription"]) }
             .to_h { |trigger| [trigger["subscription"], trigger] }
  end

  def test_publish_starts_a_job_and_an_operation_and_skips_a_filtered_subscription
    gantry = client
    queue = unique_queue
    paid = event_type("order.paid")
    receipts = "rb-receipts-#{@suffix}"
    @subscriptions[receipts] = gantry
    upserted = gantry.upsert_subscription(receipts, event: paid, filter: { "paid" => true },
                                                    target: { type: "receipt.send", queue: queue })
    assert_equal true, upserted["created"]
    assert_equal [receipts, paid, { "paid" => true }, false, "rpc"],
                 upserted["subscription"].values_at("name", "event", "filter", "paused", "source")
    assert_equal({ "type" => "receipt.send", "queue" => queue, "args" => "$payload", "priority" => 16_383,
                   "max_attempts" => 25 }, upserted["subscription"]["target"]) # the defaults filled in
    fulfilment = subscribe(gantry, "fulfilment", event: paid,
                                                 target: { operation: { name: "rb.fulfil.#{@suffix}", queue: queue,
                                                                        branches: { main: ["pick.items"] },
                                                                        globals: { "warehouse" => "w1" } } })
    refunds = subscribe(gantry, "refunds", event: paid, filter: { "paid" => false },
                                           target: { type: "refund.issue", queue: queue })
    again = gantry.upsert_subscription(receipts, event: paid, filter: { "paid" => true },
                                                 target: { type: "receipt.send", queue: queue })
    assert_equal false, again["created"]

    listed = gantry.subscriptions.select { |s| @subscriptions.key?(s["name"]) }
    assert_equal [fulfilment, receipts, refunds].sort, listed.map { |s| s["name"] }.sort
    assert_equal ["rb.fulfil.#{@suffix}", { "warehouse" => "w1" }],
                 listed.find { |s| s["name"] == fulfilment }["target"]["operation"].values_at("name", "globals")

    payload = { "order_id" => 42, "paid" => true }
    published = gantry.publish(paid, payload)
    assert_equal false, published["duplicate"]
    triggered = mine(published["triggered"])
    assert_equal [fulfilment, receipts].sort, triggered.keys.sort # not refunds: its filter does not match
    job_id = triggered[receipts]["job_id"]
    operation_id = triggered[fulfilment]["operation_id"]
    refute_nil job_id
    refute_nil operation_id

    jobs = gantry.reserve(queue, max: 10)
    assert_equal 2, jobs.size
    receipt = jobs.find { |job| job.type == "receipt.send" }
    assert_equal [job_id, payload], [receipt.id, receipt.args] # its args are the event's payload
    assert_equal({ "event_id" => published["id"], "event_type" => paid, "subscription" => receipts }, receipt.meta)
    step = jobs.find { |job| job.type == "pick.items" }
    event = { "id" => published["id"], "type" => paid, "payload" => payload }
    assert_equal [operation_id, { "warehouse" => "w1", "event" => event }],
                 step.operation.values_at("id", "globals")
    assert_equal({ "warehouse" => "w1", "event" => event }, gantry.operation(operation_id)["globals"])

    # a payload the filter rejects starts only what has no filter, and one refunds' filter matches starts refunds
    unpaid = gantry.publish(paid, { "order_id" => 43, "paid" => false })
    assert_equal [fulfilment, refunds].sort, mine(unpaid["triggered"]).keys.sort
    listed = gantry.events(type: paid)["events"]
    assert_equal [unpaid["id"], published["id"]], listed.map { |e| e["id"] } # newest first
    assert_equal payload, listed[1]["payload"]
  end

  def test_a_key_deduplicates
    gantry = client
    queue = unique_queue
    type = event_type("user.signed_up")
    name = subscribe(gantry, "welcome", event: type, target: { type: "welcome.send", queue: queue })
    key = "user-#{@suffix}"

    first = gantry.publish(type, { "user" => 7 }, key: key)
    second = gantry.publish(type, { "user" => 7 }, key: key)
    assert_equal [false, true], [first["duplicate"], second["duplicate"]]
    assert_equal first["id"], second["id"]
    assert_equal mine(first["triggered"]), mine(second["triggered"]) # the first's triggers, nothing new
    assert_equal [mine(first["triggered"])[name]["job_id"]], gantry.reserve(queue, max: 10).map(&:id)
    assert_equal key, gantry.event(first)["key"]

    other = gantry.publish(type, { "user" => 8 }, key: "#{key}-2") # another key: another event
    refute_equal first["id"], other["id"]
    outside = gantry.publish(type, { "user" => 7 }, key: key, dedupe_ms: 0) # outside a window of 0 ms
    assert_equal false, outside["duplicate"]
    refute_equal first["id"], outside["id"]
    assert_equal 2, gantry.reserve(queue, max: 10).size
  end

  def test_a_prefix_wildcard
    gantry = client
    queue = unique_queue
    name = subscribe(gantry, "orders", event: event_type("order.*"), target: { type: "order.audit", queue: queue })

    paid = gantry.publish(event_type("order.paid"), { "n" => 1 })
    shipped = gantry.publish(event_type("order.box.shipped"), { "n" => 2 })
    other = gantry.publish(event_type("orders.paid"), { "n" => 3 })  # "orders." does not start with "order."
    bare = gantry.publish(event_type("order"), { "n" => 4 })         # nor does "order" itself
    assert_equal [[name], [name], [], []], [paid, shipped, other, bare].map { |e| mine(e["triggered"]).keys }
    assert_equal [{ "n" => 1 }, { "n" => 2 }], gantry.reserve(queue, max: 10).map(&:args).sort_by { |a| a["n"] }

    page = gantry.events(type: event_type("order.*"), limit: 1)
    assert_equal [shipped["id"]], page["events"].map { |e| e["id"] }
    rest = gantry.list_events(type: event_type("order.*"), limit: 10, cursor: page["next_cursor"])
    assert_equal [paid["id"]], rest["events"].map { |e| e["id"] }
    assert_nil rest["next_cursor"]
    assert_equal [bare["id"], other["id"], shipped["id"], paid["id"]],
                 gantry.events(since: Time.now - 600, limit: 1000)["events"].map { |e| e["id"] }
                       .select { |id| [paid, shipped, other, bare].any? { |e| e["id"] == id } }
    assert_equal [], gantry.events(type: event_type("order.*"), since: Time.now + 3600)["events"]
  end

  def test_pause_and_resume
    gantry = client
    queue = unique_queue
    type = event_type("invoice.due")
    name = subscribe(gantry, "dunning", event: type, target: { type: "dunning.send", queue: queue })

    paused = gantry.pause_subscription(name)
    assert_equal [name, true], paused.values_at("name", "paused")
    assert_equal true, gantry.subscriptions.find { |s| s["name"] == name }["paused"]
    assert_empty mine(gantry.publish(type)["triggered"]) # starts nothing while paused
    assert_equal [], gantry.reserve(queue)

    resumed = gantry.resume_subscription(name)
    assert_equal [name, false], resumed.values_at("name", "paused")
    started = mine(gantry.publish(type)["triggered"])
    assert_equal [name], started.keys
    job = gantry.reserve(queue).first
    assert_equal [started[name]["job_id"], {}], [job.id, job.args] # the payload defaults to {}

    assert_equal({ "deleted" => true }, gantry.delete_subscription(name))
    refute(gantry.subscriptions.any? { |s| s["name"] == name })
    assert_empty mine(gantry.publish(type)["triggered"])
    assert_raises(Gantry::NotFound) { gantry.pause_subscription(name) }
    assert_raises(Gantry::NotFound) { gantry.delete_subscription(name) }
  end

  def test_replay
    gantry = client
    queue = unique_queue
    type = event_type("order.paid")
    name = subscribe(gantry, "receipts", event: type, target: { type: "receipt.send", queue: queue })
    first = gantry.publish(type, { "order_id" => 1 }, key: "order-1-#{@suffix}")
    first_job = mine(first["triggered"])[name]["job_id"]

    replayed = gantry.replay_event(first)
    assert_equal false, replayed["duplicate"] # never deduplicated, though it has the key's type and payload
    refute_equal first["id"], replayed["id"]
    replay_job = mine(replayed["triggered"])[name]["job_id"]
    refute_equal first_job, replay_job
    assert_equal [first_job, replay_job].sort, gantry.reserve(queue, max: 10).map(&:id).sort
    assert_equal [first["id"], type, { "order_id" => 1 }],
                 gantry.event(replayed["id"]).values_at("replay_of", "type", "payload")
    assert_equal replayed["id"], gantry.job(replay_job)["meta"]["event_id"]

    # what matches now: with the subscription gone, a replay starts nothing of ours
    gantry.delete_subscription(name)
    assert_empty mine(gantry.replay_event(first["id"])["triggered"])
    assert_raises(Gantry::NotFound) { gantry.replay_event("987654321") }
  end

  def test_event_shows_the_states_of_what_it_triggered
    gantry = client
    queue = unique_queue
    type = event_type("user.created")
    job_sub = subscribe(gantry, "mail", event: type, target: { type: "mail.send", queue: queue, priority: 5 })
    op_sub = subscribe(gantry, "onboard", event: type,
                                          target: { operation: { name: "rb.onboard.#{@suffix}", queue: queue,
                                                                 branches: { main: %w[profile.make] } } })
    published = gantry.publish(type, { "user" => 9 })

    event = gantry.get_event(published)
    assert_equal [published["id"], type, { "user" => 9 }],
                 event.values_at("id", "type", "payload")
    refute event.key?("key")
    refute event.key?("replay_of")
    Time.iso8601(event["published_at"])
    states = mine(event["triggered"]).transform_values { |t| t["state"] }
    assert_equal({ job_sub => "available", op_sub => "running" }, states)

    job = gantry.reserve(queue, max: 10).find { |j| j.type == "mail.send" }
    assert_equal 5, job.priority
    gantry.ack(job, "sent")
    gantry.cancel_operation(mine(event["triggered"])[op_sub]["operation_id"])
    states = mine(gantry.event(published["id"])["triggered"]).transform_values { |t| t["state"] }
    assert_equal({ job_sub => "completed", op_sub => "cancelled" }, states)

    error = assert_raises(Gantry::NotFound) { gantry.event("987654321") }
    assert_equal(-32_002, error.code)
  end

  def test_refusals
    gantry = client
    name = "rb-refused-#{@suffix}"
    @subscriptions[name] = gantry
    error = assert_raises(Gantry::InvalidParams) do
      gantry.upsert_subscription(name, event: "*", filter: [1], target: { type: "audit.write" })
    end
    assert_equal [-32_602, "invalid_params", "filter"], [error.code, error.name, error.field]

    error = assert_raises(Gantry::InvalidParams) { gantry.publish(event_type("order.*"), {}) }
    assert_equal [-32_602, "type"], [error.code, error.field]
    error = assert_raises(Gantry::InvalidParams) { gantry.publish(event_type("order*")) }
    assert_equal "type", error.field

    error = assert_raises(Gantry::InvalidParams) do
      gantry.upsert_subscription(name, event: event_type("a"), target: { operation: { name: "x", branches: {} } })
    end
    assert_match(/\Atarget/, error.field)
    refute(gantry.subscriptions.any? { |s| s["name"] == name }) # nothing was stored
  end

  # Producers publish and read events; replaying and subscriptions are the admin's (the TLS broker with tokens
  # that `with_broker.py --secure` starts; skipped without it).
  def test_a_producer_token_publishes_but_may_not_subscribe
    settings = %w[GANTRY_SECURE_URL GANTRY_TEST_CA GANTRY_TEST_ADMIN_TOKEN GANTRY_TEST_PRODUCER_TOKEN]
    missing = settings.reject { |name| ENV[name].to_s.strip != "" }
    skip "no #{missing.join(", ")}: scripts/with_broker.py --secure sets them" if missing.any?
    secure = lambda do |role|
      client(url: ENV["GANTRY_SECURE_URL"], token: ENV["GANTRY_TEST_#{role}_TOKEN"], ca_file: ENV["GANTRY_TEST_CA"])
    end
    admin = secure.call("ADMIN")
    producer = secure.call("PRODUCER")
    type = event_type("order.paid")
    name = subscribe(admin, "secure", event: type, target: { type: "receipt.send", queue: unique_queue })

    published = producer.publish(type, { "order_id" => 1 })
    assert_equal [name], mine(published["triggered"]).keys
    assert_equal [type, "available"], [producer.event(published)["type"],
                                       mine(producer.event(published)["triggered"])[name]["state"]]
    assert_equal [published["id"]], producer.events(type: type)["events"].map { |e| e["id"] }
    [-> { producer.replay_event(published) }, -> { producer.subscriptions },
     -> { producer.upsert_subscription("rb-no-#{@suffix}", event: type, target: { type: "x" }) },
     -> { producer.pause_subscription(name) }, -> { producer.delete_subscription(name) }].each do |call|
      error = assert_raises(Gantry::Forbidden) { call.call }
      assert_equal(-32_009, error.code)
    end
    assert_equal false, admin.subscriptions.find { |s| s["name"] == name }["paused"]
  end
end
