# frozen_string_literal: true

require_relative "test_helper"

# Operations (operations.start/get/list/retry/cancel, ack's set and jump_to), through the client and the worker.
class OperationsTest < Minitest::Test
  include GantryTest

  # A named operation class, for the name the class gives it.
  module Accounts
    class SignupFlow < Gantry::Operation
      queue "signup"
      branch :main, "account.create", parallel("welcome.send", { type: "crm.sync", max_attempts: 2 }), "trial.start"
      branch :refund, "refund.issue"
    end
  end

  def worker(queues, **options)
    Gantry::Worker.new(url: url, queues: queues, id: "rb-op-test-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER,
                       wait_ms: 500, **options)
  end

  def op_name
    "rb.test.#{SecureRandom.hex(4)}"
  end

  def wait_operation(gantry, id, state, timeout = 10)
    eventually(timeout, "operation #{id} never became #{state}") do
      (operation = gantry.operation(id))["state"] == state && operation
    end
  end

  # Records each call of the handlers as [type, operation context], and answers with what `outcomes` gives
  # for the type (a callable of (args, job), or a value).
  def recording_handlers(calls, outcomes)
    outcomes.to_h do |type, outcome|
      [type, lambda do |args, job|
        calls << [type, job.operation]
        outcome.respond_to?(:call) ? outcome.call(args, job) : outcome
      end]
    end
  end

  def test_start_and_reserve_show_the_operation_context
    gantry = client
    queue = unique_queue
    name = op_name
    started = gantry.start_operation(name, branches: { main: ["account.create", "welcome.send"] },
                                           globals: { user_id: 7 }, queue: queue)
    assert_equal ["running", true], started.values_at("state", "created")
    id = started["id"]

    plain = gantry.enqueue("plain", [], queue: queue)
    jobs = gantry.reserve(queue, max: 2)
    assert_equal 2, jobs.size
    step = jobs.find { |job| job.type == "account.create" }
    assert_equal({ "id" => id, "name" => name, "branch" => "main", "step" => "account.create", "index" => 0,
                   "globals" => { "user_id" => 7 } }, step.operation)
    assert_equal step.operation, step["operation"]
    assert_nil jobs.find { |job| job.id == plain }.operation

    operation = gantry.get_operation(started) # start_operation's answer serves as the id
    assert_equal [id, name, "running", queue, { "user_id" => 7 }, "main", 0, ["main"]],
                 operation.values_at("id", "name", "state", "queue", "globals", "branch", "index", "path")
    assert_equal [%w[main 0 account.create running], %w[main 1 welcome.send unprocessed]],
                 operation["steps"].map { |s| [s["branch"], s["index"].to_s, s["type"], s["state"]] }
    assert_equal step.id, operation["steps"][0]["job_id"]
    assert_equal %w[account.create welcome.send], operation["branches"]["main"].map { |s| s["type"] }

    gantry.ack(step, { "ok" => true }, set: { "account" => "a-1" })
    second = gantry.reserve(queue).first
    assert_equal ["welcome.send", 1, { "user_id" => 7, "account" => "a-1" }],
                 [second.type, second.operation["index"], second.operation["globals"]]
    gantry.ack(second)
    assert_equal "completed", wait_operation(gantry, id, "completed")["state"]
    assert_equal({ "ok" => true }, gantry.job(step.id)["result"])

    error = assert_raises(Gantry::NotFound) { gantry.operation("987654321") }
    assert_equal(-32_002, error.code)
  end

  def test_a_step_sets_a_global_that_a_later_step_reads
    gantry = client
    queue = unique_queue
    calls = Thread::Queue.new
    handlers = recording_handlers(calls, {
      "token.make" => Gantry::StepResult.new(set: { "token" => "t-42" }, result: "made"),
      "token.hold" => ->(_args, _job) { "held" },
      "token.use" => ->(_args, job) { { "used" => job.operation["globals"]["token"] } },
    })
    id = gantry.start_operation(op_name, branches: { "main" => %w[token.make token.hold token.use] },
                                         globals: { "user_id" => 1 }, queue: queue)["id"]
    start_worker(worker([queue], handlers: handlers))
    operation = wait_operation(gantry, id, "completed")

    assert_equal({ "user_id" => 1, "token" => "t-42" }, operation["globals"])
    assert_equal %w[token.make token.hold token.use], Array.new(3) { calls.pop[0] }
    results = operation["steps"].map { |s| gantry.job(s["job_id"])["result"] }
    assert_equal ["made", "held", { "used" => "t-42" }], results
  end

  def test_jump_to_a_branch_and_back_to_main
    gantry = client
    queue = unique_queue
    calls = Thread::Queue.new
    handlers = recording_handlers(calls, {
      "order.check" => Gantry::StepResult.new(jump_to: :refund, set: { "refunding" => true }),
      "order.ship" => nil,
      "refund.issue" => Gantry::StepResult.new(jump_to: { branch: "main", step: "order.close" }),
      "order.close" => ->(_args, job) { job.operation.values_at("branch", "index", "globals") },
    })
    id = gantry.start_operation(op_name, queue: queue,
                                         branches: { main: %w[order.check order.ship order.close],
                                                     refund: %w[refund.issue] })["id"]
    start_worker(worker([queue], handlers: handlers))
    operation = wait_operation(gantry, id, "completed")

    assert_equal %w[main refund main], operation["path"]
    seen = Array.new(3) { calls.pop }
    assert_equal %w[order.check refund.issue order.close], seen.map(&:first)
    assert_equal %w[main refund main], seen.map { |_, context| context["branch"] }
    assert calls.empty?, "order.ship ran though order.check jumped past it"
    close = operation["steps"].find { |s| s["type"] == "order.close" }
    assert_equal ["main", 2, { "refunding" => true }], gantry.job(close["job_id"])["result"]
    refute(operation["steps"].any? { |s| s["type"] == "order.ship" && s["job_id"] })
  end

  def test_a_parallel_group_runs_at_once_and_joins
    gantry = client
    queue = unique_queue
    started = Thread::Queue.new
    lock = Mutex.new
    running = 0
    most = 0
    member = lambda do |args, job|
      lock.synchronize { most = [most, running += 1].max }
      started << job.type
      GantryTest.wait_until(5) { started.size >= 3 } # all three run together before any finishes
      lock.synchronize { running -= 1 }
      Gantry::StepResult.new(set: { job.type => args["n"] })
    end
    joined = Thread::Queue.new
    handlers = {
      "prep" => ->(_) { "prepared" },
      "part" => member, "part.b" => member, "part.c" => member,
      "join" => ->(_args, job) { joined << job.operation["globals"]; "joined" },
    }
    group = Gantry::Operation.parallel({ type: "part", args: { "n" => 1 } }, { type: "part.b", args: { "n" => 2 } },
                                       { "type" => "part.c", "args" => { "n" => 3 } })
    id = gantry.start_operation(op_name, queue: queue, branches: { main: ["prep", group, "join"] })["id"]
    start_worker(worker([queue], concurrency: 4, handlers: handlers))
    operation = wait_operation(gantry, id, "completed")

    assert_equal 3, most, "the group's three steps did not run at once"
    assert_equal({ "part" => 1, "part.b" => 2, "part.c" => 3 }, joined.pop)
    assert_equal({ "part" => 1, "part.b" => 2, "part.c" => 3 }, operation["globals"])
    parts = operation["steps"].select { |s| s["index"] == 1 }
    assert_equal [[0, "part"], [1, "part.b"], [2, "part.c"]], parts.map { |s| [s["member"], s["type"]] }
    join = operation["steps"].find { |s| s["type"] == "join" }
    assert_equal [2, "completed"], join.values_at("index", "state")
    last_part = parts.map { |s| Time.iso8601(s["finished_at"]) }.max
    # (5 ms of slack: the broker's timestamps may come back a millisecond or two early; see client_test.rb)
    assert_operator Time.iso8601(join["started_at"]) + 0.005, :>=, last_part,
                    "the join started before the group was done"
  end

  def test_a_failed_step_then_retry_does_not_run_completed_steps_again
    gantry = client
    queue = unique_queue
    counts = Hash.new(0)
    lock = Mutex.new
    count = ->(type) { lock.synchronize { counts[type] += 1 } }
    handlers = {
      "charge.card" => ->(_) { count.call("charge.card"); Gantry::StepResult.new(set: { "charged" => true }) },
      "ship.box" => lambda do |_args, job|
        raise "the warehouse is closed" if count.call("ship.box") == 1

        job.operation["globals"]["charged"] ? "shipped" : "not charged"
      end,
      "mail.receipt" => ->(_) { count.call("mail.receipt") },
    }
    id = gantry.start_operation(op_name, queue: queue,
                                         branches: { main: ["charge.card", { type: "ship.box", max_attempts: 1 },
                                                            "mail.receipt"] })["id"]
    start_worker(worker([queue], handlers: handlers))

    failed = wait_operation(gantry, id, "failed")
    assert_equal ["main", 1, "ship.box", "the warehouse is closed", "RuntimeError"],
                 failed["error"].values_at("branch", "index", "type", "message", "kind")
    assert_equal({ "charge.card" => 1, "ship.box" => 1 }, lock.synchronize { counts.dup })

    retried = gantry.retry_operation(id)
    assert_equal [id, "running", 1], [retried["id"], retried["state"], retried["job_ids"].size]
    done = wait_operation(gantry, id, "completed")
    assert_equal({ "charge.card" => 1, "ship.box" => 2, "mail.receipt" => 1 }, lock.synchronize { counts.dup })
    assert_equal "shipped", gantry.job(retried["job_ids"][0])["result"]
    assert(done["steps"].any? { |s| s["type"] == "ship.box" && s["state"] == "failed" && s["retried"] })
    assert_raises(Gantry::WrongState) { gantry.retry_operation(id) } # completed: only from: "start"

    again = gantry.retry_operation(id, from: :start)
    assert_equal "running", again["state"]
    wait_operation(gantry, id, "completed")
    assert_equal({ "charge.card" => 2, "ship.box" => 3, "mail.receipt" => 2 }, lock.synchronize { counts.dup })
  end

  def test_start_with_a_key_is_idempotent_and_list_finds_it
    gantry = client
    queue = unique_queue
    name = op_name
    key = "user-#{SecureRandom.hex(4)}"
    first = gantry.start_operation(name, branches: { main: ["a"] }, globals: { "user" => key }, queue: queue, key: key)
    second = gantry.start_operation(name, branches: { main: %w[a b] }, globals: { "other" => 1 }, queue: queue,
                                          key: key)
    assert_equal [first["id"], true, false], [second["id"], first["created"], second["created"]]
    other = gantry.start_operation(name, branches: { main: ["a"] }, queue: queue, key: "#{key}-2")
    refute_equal first["id"], other["id"]
    assert_equal 1, gantry.reserve(queue, max: 10).count { |job| job.operation["id"] == first["id"] }

    listed = gantry.list_operations(name: name)
    assert_equal [other["id"], first["id"]], listed["operations"].map { |o| o["id"] } # newest first
    refute listed["operations"][0].key?("steps")
    assert_equal key, listed["operations"][1]["key"]
    assert_equal [first["id"]], gantry.operations(globals: { "user" => key })["operations"].map { |o| o["id"] }
    assert_equal [], gantry.operations(name: name, state: :completed)["operations"]
    page = gantry.operations(name: name, limit: 1)
    assert_equal [other["id"]], page["operations"].map { |o| o["id"] }
    rest = gantry.operations(name: name, limit: 1, cursor: page["next_cursor"])
    assert_equal [first["id"]], rest["operations"].map { |o| o["id"] }
    error = assert_raises(Gantry::InvalidParams) { gantry.start_operation(name, branches: { main: [] }) }
    assert_equal(-32_602, error.code)
  end

  def test_set_or_jump_to_on_a_job_that_is_no_step_is_refused
    gantry = client
    queue = unique_queue
    gantry.enqueue("plain", [], queue: queue)
    job = gantry.reserve(queue).first
    error = assert_raises(Gantry::InvalidParams) { gantry.ack(job, set: { "x" => 1 }) }
    assert_equal [-32_602, "set"], [error.code, error.field]
    error = assert_raises(Gantry::InvalidParams) { gantry.ack(job, jump_to: "main") }
    assert_equal [-32_602, "jump_to"], [error.code, error.field]
    assert_equal "reserved", gantry.job(job)["state"] # nothing was acked
    assert_raises(ArgumentError) { Gantry::StepResult.new(set: [1]) }
    assert_raises(ArgumentError) { Gantry::StepResult.new(jump_to: { step: "x" }) }

    # A worker whose handler answers a plain job with a StepResult: the broker refuses it, the job fails for good.
    id = gantry.enqueue("plain", [], queue: queue)
    work = worker([queue], handlers: { "plain" => ->(_) { Gantry::StepResult.new(set: { "x" => 1 }) } }, max_jobs: 1)
    assert start_worker(work).join(10)
    failed = gantry.job(id)
    assert_equal ["dead", "Gantry::InvalidParams"], [failed["state"], failed["errors"].last["kind"]]

    # A step jumping to a branch its operation lacks: refused, the job dead, the operation failed at that step.
    operation = gantry.start_operation(op_name, branches: { main: %w[go] }, queue: queue)
    work = worker([queue], handlers: { "go" => ->(_) { Gantry::StepResult.new(jump_to: "nowhere") } }, max_jobs: 1)
    assert start_worker(work).join(10)
    failed = wait_operation(gantry, operation, "failed")
    assert_equal ["go", "Gantry::InvalidParams"], failed["error"].values_at("type", "kind")
    assert_match(/nowhere/, failed["error"]["message"])
  end

  def test_cancel_operation
    gantry = client
    queue = unique_queue
    id = gantry.start_operation(op_name, branches: { main: %w[a b] }, queue: queue)["id"]
    step = gantry.operation(id)["steps"][0]["job_id"]
    cancelled = gantry.cancel_operation(id)
    assert_equal({ "id" => id, "state" => "cancelled", "cancelled" => 1, "stopping" => 0 }, cancelled)
    assert_equal "cancelled", gantry.operation(id)["state"]
    assert_equal "cancelled", gantry.job(step)["state"]
    assert_equal [], gantry.reserve(queue)
    error = assert_raises(Gantry::WrongState) { gantry.cancel_operation(id) }
    assert_equal(-32_008, error.code)
    assert_equal 1, gantry.retry_operation(id)["job_ids"].size # a cancelled one resumes
  end

  # Every step outcome that sets or jumps goes in an ack of its own, even when the jobs finish together, while
  # plain results go together in one ack with ids (a spy holds the first plain ack sent alone until the other
  # plain jobs wait for theirs, as in worker_test.rb).
  def test_the_worker_acks_step_outcomes_alone
    gantry = client
    queue = unique_queue
    ids = Array.new(4) do |n|
      gantry.start_operation(op_name, branches: { main: ["s"] }, globals: { "n" => n }, queue: queue)["id"]
    end
    plain = Array.new(4) { gantry.enqueue("p", [], queue: queue) }
    go = Thread::Queue.new
    started = Thread::Queue.new
    handlers = {
      "s" => lambda do |_args, job|
        started << 1
        go.pop
        Gantry::StepResult.new(set: { "done" => job.operation["globals"]["n"] }, result: "r")
      end,
      "p" => ->(_) { started << 1; go.pop; "plain" },
    }
    work = worker([queue], concurrency: 8, handlers: handlers, max_jobs: 8)
    sent = []
    lock = Mutex.new
    held = false
    spy = Module.new do
      define_method(:ack) do |id, result = nil, **options|
        lock.synchronize { sent << [:ack, id.is_a?(Gantry::Job) ? id.id : id, options] }
        if options.empty? && !held
          held = true
          GantryTest.wait_until do # the plain jobs' threads still there all wait for their acks
            threads = Thread.list.select { |t| plain.include?(t.name.to_s.delete_prefix("gantry-job ")) }
            threads.all? { |t| t.status == "sleep" }
          end
        end
        super(id, result, **options)
      end
      define_method(:ack_many) do |many, results: nil|
        lock.synchronize { sent << [:ack_many, many] }
        super(many, results: results)
      end
    end
    thread = start_worker(work)
    work.instance_variable_get(:@client).singleton_class.prepend(spy)
    8.times { started.pop }
    go.close
    assert thread.join(10), "the worker did not finish its 8 jobs"

    ids.each_with_index do |id, n|
      operation = wait_operation(gantry, id, "completed")
      assert_equal({ "n" => n, "done" => n }, operation["globals"])
      assert_equal "r", gantry.job(operation["steps"][0]["job_id"])["result"]
    end
    plain.each { |id| assert_equal %w[completed plain], gantry.job(id).values_at("state", "result") }
    step_jobs = ids.map { |id| gantry.operation(id)["steps"][0]["job_id"] }
    batched = sent.select { |kind, *| kind == :ack_many }.flat_map { |_, many| many }
    refute_empty batched, "no ack with ids was sent"
    assert_empty batched & step_jobs, "a step's set went in an ack with ids"
    lone = sent.select { |kind, *| kind == :ack }
    assert_equal step_jobs.sort, lone.select { |_, _, options| options[:set] }.map { |_, id, _| id }.sort
  end

  def test_an_operation_class
    assert_equal "operations_test.accounts.signup_flow", Accounts::SignupFlow.operation_name
    assert_equal "signup", Accounts::SignupFlow.queue
    assert_equal({ "main" => ["account.create",
                              { "parallel" => ["welcome.send", { "type" => "crm.sync", "max_attempts" => 2 }] },
                              "trial.start"],
                   "refund" => ["refund.issue"] }, Accounts::SignupFlow.branches)

    gantry = client
    queue = unique_queue
    name = op_name
    flow = Class.new(Accounts::SignupFlow) do
      operation_name name
      queue queue
      branch :refund, "refund.issue", "refund.mail"
    end
    assert_equal %w[refund.issue refund.mail], flow.branches["refund"]
    assert_equal Accounts::SignupFlow.branches["main"], flow.branches["main"]
    assert_raises(ArgumentError) { Class.new(Gantry::Operation).operation_name }

    key = "user-#{SecureRandom.hex(4)}"
    started = flow.start(gantry, globals: { user_id: 7 }, key: key)
    again = flow.start(gantry, key: key)
    assert_equal [true, started["id"], false], [started["created"], again["id"], again["created"]]
    calls = Thread::Queue.new
    handlers = recording_handlers(calls, {
      "account.create" => Gantry::StepResult.new(set: { "account" => 1 }),
      "welcome.send" => nil, "crm.sync" => nil,
      "trial.start" => Gantry::StepResult.new(jump_to: "refund"),
      "refund.issue" => nil, "refund.mail" => nil,
    })
    start_worker(worker([queue], concurrency: 2, handlers: handlers))
    operation = wait_operation(gantry, started["id"], "completed")
    assert_equal [name, queue, { "user_id" => 7, "account" => 1 }, %w[main refund]],
                 operation.values_at("name", "queue", "globals", "path")
    assert_equal 6, calls.size
    assert_equal [started["id"]], flow.list(gantry)["operations"].map { |o| o["id"] }

    # the class's own queue when start gives none: its steps wait on "signup"
    other = Accounts::SignupFlow.start(gantry, key: key)
    assert_equal "signup", gantry.operation(other)["queue"]
    gantry.cancel_operation(other)
  end
end
