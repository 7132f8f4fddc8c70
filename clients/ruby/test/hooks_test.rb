# frozen_string_literal: true

require_relative "test_helper"
require "stringio"

class HooksTest < Minitest::Test
  include GantryTest

  HOOKS_JSON = File.expand_path("../../../proto-json/hooks.json", __dir__)

  def worker(queues, **options)
    Gantry::Worker.new(url: url, queues: queues, id: "rb-hooks-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER,
                       wait_ms: 500, **options)
  end

  def wait_state(gantry, id, state, timeout = 5)
    eventually(timeout, "job #{id} never became #{state}") { (job = gantry.job(id))["state"] == state && job }
  end

  # Adding a hook to proto-json/hooks.json fails this until the client offers it.
  def test_offers_exactly_the_hooks_of_proto_json
    spec = JSON.parse(File.read(HOOKS_JSON))["hooks"]
    assert_equal spec.map { |hook| hook["name"] }, Gantry::Hooks::NAMES.map(&:to_s)
    assert_equal spec.to_h { |hook| [hook["name"], hook["kind"]] },
                 Gantry::Hooks::KINDS.to_h { |name, kind| [name.to_s, kind.to_s] }
    assert_equal Gantry::Hooks::NAMES.sort, (Gantry::Hooks::CLIENT | Gantry::Hooks::WORKER).sort

    gantry = Gantry::Client.new(url: "127.0.0.1:1")
    work = Gantry::Worker.new(url: "127.0.0.1:1", queues: ["q"], logger: QUIET_LOGGER)
    spec.each do |hook|
      name = hook["name"]
      taken = [gantry, work, Gantry].select do |owner|
        owner.on(name) { nil }.tap { |added| owner.hooks.off(name, added) }
      rescue ArgumentError
        false
      end
      refute_empty taken - [Gantry], "neither a Client nor a Worker takes #{name}"
      assert_includes taken, Gantry
    end
    error = assert_raises(ArgumentError) { gantry.on(:before_job) { nil } }
    assert_match(/before_job is run by a Gantry::Worker/, error.message)
    assert_raises(ArgumentError) { work.on(:after_enqueue) { nil } }
    error = assert_raises(ArgumentError) { gantry.on(:before_perform) { nil } }
    assert_match(/no hook :before_perform: the hooks are before_enqueue, around_enqueue/, error.message)
  end

  def test_each_hook_fires_in_order
    gantry = client
    queue = unique_queue("hooks")
    events = Thread::Queue.new
    global = Gantry.on(:before_enqueue) { |job| events << [:global_before_enqueue, job.type] }
    gantry.on(:before_enqueue) do |job|
      events << [:before_enqueue, job.type]
      job.meta["tenant"] = "acme"
    end
    gantry.on(:around_enqueue) do |job, step|
      events << [:around_enqueue_outer, job.type]
      id = step.call
      events << [:around_enqueue_outer_done, id]
    end
    gantry.on(:around_enqueue) do |job, step|
      events << [:around_enqueue_inner, job.type]
      step.call
    end
    gantry.on(:after_enqueue) { |job, id| events << [:after_enqueue, job.type, id, job.id] }
    ok = gantry.enqueue("hooks.ok", [1], queue: queue)
    bad = gantry.enqueue("hooks.bad", [2], queue: queue, meta: { "mine" => true })
    assert_equal({ "tenant" => "acme" }, gantry.job(ok)["meta"])
    assert_equal({ "mine" => true, "tenant" => "acme" }, gantry.job(bad)["meta"])
    %w[hooks.ok hooks.bad].zip([ok, bad]) do |type, id|
      assert_equal [[:global_before_enqueue, type], [:before_enqueue, type], [:around_enqueue_outer, type],
                    [:around_enqueue_inner, type], [:around_enqueue_outer_done, id], [:after_enqueue, type, id, id]],
                   Array.new(6) { events.pop }
    end

    handlers = { "hooks.ok" => ->(args) { events << [:handler, args[0]] && { "n" => args[0] } },
                 "hooks.bad" => ->(_) { raise Gantry::PermanentError, "no good" } }
    work = worker([queue], concurrency: 1, handlers: handlers, max_jobs: 2)
    %i[before_startup after_startup before_shutdown after_shutdown].each do |name|
      work.on(name) { |w| events << [name, w.equal?(work)] }
    end
    work.on(:before_job) { |job| events << [:before_job, job.type] }
    work.on(:around_job) do |job, step|
      events << [:around_job, job.type]
      step.call.tap { |value| events << [:around_job_done, value] }
    end
    work.on(:after_job) { |job, outcome| events << [:after_job, job.type, outcome.ok?, outcome.result, outcome.error&.message] }
    work.on(:on_job_failure) { |job, error| events << [:on_job_failure, job.id, error.class, error.message] }
    work.on(:on_fatal_error) { |error, context| events << [:on_fatal_error, error.message, context[:hook]] }
    assert start_worker(work).join(10), "the worker did not finish its 2 jobs"
    seen = []
    seen << events.pop until events.empty?
    assert_equal [[:before_startup, true], [:after_startup, true],
                  [:before_job, "hooks.ok"], [:around_job, "hooks.ok"], [:handler, 1], [:around_job_done, { "n" => 1 }],
                  [:after_job, "hooks.ok", true, { "n" => 1 }, nil],
                  [:before_job, "hooks.bad"], [:around_job, "hooks.bad"],
                  [:after_job, "hooks.bad", false, nil, "no good"],
                  [:on_job_failure, bad, Gantry::PermanentError, "no good"],
                  [:before_shutdown, true], [:after_shutdown, true]], seen
    assert_equal "completed", gantry.job(ok)["state"]
    assert_equal ["dead", "Gantry::PermanentError"], [(job = gantry.job(bad))["state"], job["errors"].last["kind"]]
  ensure
    Gantry.hooks.off(:before_enqueue, global) if global
  end

  def test_enqueue_batch_runs_the_before_and_after_hooks_per_job_and_around_once
    gantry = client
    queue = unique_queue("hooks")
    events = []
    gantry.on(:before_enqueue) { |job| events << [:before, job.type] && job.options[:priority] = 7 }
    gantry.on(:around_enqueue) { |jobs, step| events << [:around, jobs.map(&:type)] && step.call }
    gantry.on(:after_enqueue) { |job, id| events << [:after, job.type, id] }
    ids = gantry.enqueue_batch([{ type: "a", queue: queue }, { "type" => "b", "queue" => queue }])
    assert_equal [[:before, "a"], [:before, "b"], [:around, %w[a b]], [:after, "a", ids[0]], [:after, "b", ids[1]]],
                 events
    assert_equal [7, 7], ids.map { |id| gantry.job(id)["priority"] }
  end

  # A hook object (Exekutor's style): each method named after a hook is one; an around method may yield.
  class Recorder
    attr_reader :events

    def initialize
      @events = []
    end

    def before_enqueue(job)
      @events << [:before_enqueue, job.type]
    end

    def around_enqueue(job)
      @events << [:around_enqueue, yield]
    end

    def helper; end
  end

  def test_a_hook_object_registers_its_methods
    gantry = client
    recorder = gantry.hooks.register(Recorder.new)
    id = gantry.enqueue("obj", [], queue: unique_queue("hooks"))
    assert_equal [[:before_enqueue, "obj"], [:around_enqueue, id]], recorder.events
    assert_raises(ArgumentError) { gantry.hooks.register(Object.new) }
  end

  def test_a_raising_enqueue_hook_reaches_on_fatal_error_and_what_it_does_to_the_enqueue
    gantry = client
    queue = unique_queue("hooks")
    fatal = []
    gantry.on(:on_fatal_error) { |error, context| fatal << [error.class, error.message, context[:hook], context[:job]&.type] }
    mode = nil
    gantry.on(:before_enqueue) { |_| raise ArgumentError, "before boom" if mode == :before }
    gantry.on(:around_enqueue) do |_, step|
      case mode
      when :skip then nil
      when :twice then step.call && step.call
      when :after_step then step.call && raise("around boom")
      else step.call
      end
    end
    gantry.on(:after_enqueue) { |_, _| raise "after boom" if mode == :after }

    # a before or around hook that raises before the step: the enqueue raises it, nothing is stored
    mode = :before
    assert_raises(ArgumentError) { gantry.enqueue("h", [], queue: queue) }
    mode = :skip
    error = assert_raises(Gantry::HookError) { gantry.enqueue("h", [], queue: queue) }
    assert_match(/around_enqueue hook .* returned without calling its next step/, error.message)
    assert_empty gantry.jobs(queue: queue)["jobs"]

    # once the broker stored the job no hook's error makes the enqueue raise: it would be enqueued twice
    mode = :twice
    twice = gantry.enqueue("h", [1], queue: queue)
    mode = :after_step
    after_step = gantry.enqueue("h", [2], queue: queue)
    mode = :after
    after = gantry.enqueue("h", [3], queue: queue)
    assert_equal [twice, after_step, after].sort, gantry.jobs(queue: queue)["jobs"].map { |job| job["id"] }.sort
    assert_equal [[ArgumentError, "before boom", :before_enqueue, "h"],
                  [Gantry::HookError, error.message, :around_enqueue, "h"],
                  [Gantry::HookError, "an around hook called its next step twice", :around_enqueue, "h"],
                  [RuntimeError, "around boom", :around_enqueue, "h"],
                  [RuntimeError, "after boom", :after_enqueue, "h"]], fatal

    # the broker's own error passes through the around hooks and is not a hook's
    mode = nil
    assert_raises(Gantry::InvalidParams) { gantry.enqueue("h", [], queue: queue, priority: 0) }
    assert_equal 5, fatal.size
  end

  def test_a_raising_job_hook_reaches_on_fatal_error_and_what_it_does_to_the_job
    gantry = client
    queue = unique_queue("hooks")
    ids = %w[before around after failure].to_h do |which|
      [which, gantry.enqueue("h.#{which}", [], queue: queue, max_attempts: 1)]
    end
    fatal = Thread::Queue.new
    failures = Thread::Queue.new
    log = StringIO.new
    work = worker([queue], concurrency: 1, max_jobs: 4, logger: Logger.new(log),
                           handlers: %w[before around after].to_h { |w| ["h.#{w}", ->(_) { w }] }
                                       .merge("h.failure" => ->(_) { raise IOError, "handler boom" }))
    work.on(:before_job) { |job| raise "before_job boom" if job.type == "h.before" }
    work.on(:around_job) { |job, step| step.call.tap { raise "around_job boom" if job.type == "h.around" } }
    work.on(:after_job) { |job, _| raise "after_job boom" if job.type == "h.after" }
    work.on(:on_job_failure) do |job, error|
      failures << [job.type, error.message]
      raise "on_job_failure boom" if job.type == "h.failure"
    end
    work.on(:on_fatal_error) { |error, context| fatal << [context[:hook], context[:job]&.type, error.message] }
    work.on(:on_fatal_error) { |error, _| raise "the reporter is down" if error.message == "after_job boom" }
    assert start_worker(work).join(10), "the worker did not finish its 4 jobs"

    # before_job and around_job fail the job like its handler (on_job_failure hears it too); after_job does not
    before = wait_state(gantry, ids["before"], "dead")
    assert_equal %w[RuntimeError before_job\ boom], before["errors"].last.values_at("kind", "message")
    around = wait_state(gantry, ids["around"], "dead")
    assert_equal "around_job boom", around["errors"].last["message"]
    assert_equal ["completed", "after"], gantry.job(ids["after"]).values_at("state", "result")
    # an error in on_job_failure changes nothing: the job was nacked with its handler's error
    failed = wait_state(gantry, ids["failure"], "dead")
    assert_equal %w[IOError handler\ boom], failed["errors"].last.values_at("kind", "message")

    reported = []
    reported << fatal.pop until fatal.empty?
    assert_equal [[:before_job, "h.before", "before_job boom"], [:around_job, "h.around", "around_job boom"],
                  [:after_job, "h.after", "after_job boom"], [:on_job_failure, "h.failure", "on_job_failure boom"]],
                 reported
    heard = []
    heard << failures.pop until failures.empty?
    assert_equal [["h.before", "before_job boom"], ["h.around", "around_job boom"], ["h.failure", "handler boom"]],
                 heard
    # an error inside on_fatal_error is logged
    assert_match(/the on_fatal_error hook raised.*RuntimeError: the reporter is down \(reporting RuntimeError: after_job boom\)/,
                 log.string)
  end

  def test_a_raising_lifecycle_hook_is_reported_and_the_worker_carries_on
    gantry = client
    queue = unique_queue("hooks")
    id = gantry.enqueue("h", [], queue: queue)
    fatal = Thread::Queue.new
    work = worker([queue], max_jobs: 1, handlers: { "h" => ->(_) { "done" } })
    work.on(:before_startup) { |_| raise "no metrics server" }
    work.on(:on_fatal_error) { |error, context| fatal << [context[:hook], error.message] }
    assert start_worker(work).join(10)
    assert_equal "completed", gantry.job(id)["state"]
    assert_equal [:before_startup, "no metrics server"], fatal.pop
  end

  def test_a_fatal_error_ending_run_reaches_on_fatal_error
    @fake = FakeBroker.new do |request|
      next FakeBroker.hello(request) if request["method"] == "hello"

      FakeBroker.error(request, -32_009, "this token may not reserve from that queue", { "queue" => "secret" })
    end
    fatal = Thread::Queue.new
    work = Gantry::Worker.new(url: @fake.url, queues: ["secret"], logger: QUIET_LOGGER, wait_ms: 100)
    work.on(:on_fatal_error) { |error, context| fatal << [error.class, context[:hook], context[:worker]] }
    work.on(:before_shutdown) { |_| fatal << :before_shutdown }
    thread = Thread.new { work.run }
    thread.report_on_exception = false
    assert_raises(Gantry::Forbidden) { thread.join(10) } # join raises what ended run
    assert_equal [Gantry::Forbidden, nil, work], fatal.pop
    assert_equal :before_shutdown, fatal.pop
  ensure
    @fake&.close
  end
end
