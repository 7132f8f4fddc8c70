# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

class TracingTest < Minitest::Test
  include GantryTest

  # A tracer of the test's own, as a user of another tracer would plug one in: spans on a per-thread stack,
  # every span kept.
  class StackTracer
    Span = Struct.new(:trace_id, :span_id, :parent_id, :link, :name, keyword_init: true) do
      def traceparent
        "00-#{trace_id}-#{span_id}-01"
      end
    end

    attr_reader :spans

    def initialize(tracestate: nil)
      @tracestate = tracestate
      @spans = Queue.new
    end

    def current
      (Thread.current[:stack_tracer] ||= []).last
    end

    def in_span(name, trace_id: SecureRandom.hex(16), parent_id: nil, link: nil)
      span = Span.new(trace_id: trace_id, span_id: SecureRandom.hex(8), parent_id: parent_id, link: link, name: name)
      @spans << span
      (Thread.current[:stack_tracer] ||= []) << span
      yield span
    ensure
      Thread.current[:stack_tracer].pop
    end

    # The provider's two methods.
    def current_context
      span = current
      span && { traceparent: span.traceparent, tracestate: @tracestate }
    end

    def in_job_span(job, parent, link:, &block)
      _, trace_id, span_id, = parent&.fetch("traceparent")&.split("-")
      name = "#{job.type} process"
      if parent.nil? then in_span(name, &block)
      elsif link then in_span(name, link: [trace_id, span_id], &block)
      else in_span(name, trace_id: trace_id, parent_id: span_id, &block)
      end
    end
  end

  def worker(queues, **options)
    Gantry::Worker.new(url: url, queues: queues, id: "rb-trace-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER,
                       wait_ms: 300, **options)
  end

  def wait_state(gantry, id, state, timeout = 5)
    eventually(timeout, "job #{id} never became #{state}") { (job = gantry.job(id))["state"] == state && job }
  end

  # The job fails on its first attempt: the handler sees a span that is the enqueue's child then, and a new trace
  # linked to the enqueue on the second.
  def test_traceparent_survives_enqueue_to_reserve_child_first_then_link_on_a_retry
    tracer = StackTracer.new(tracestate: "vendor=opaque")
    gantry = client(tracing: tracer)
    queue = unique_queue("trace")
    enqueue_span = nil
    id = tracer.in_span("web request") do |span|
      enqueue_span = span
      gantry.enqueue("traced", [], queue: queue, max_attempts: 1)
    end
    assert_equal({ "traceparent" => enqueue_span.traceparent, "tracestate" => "vendor=opaque" }, gantry.job(id)["meta"])

    seen = Thread::Queue.new
    handler = lambda do |_args, job|
      seen << [job.attempt, tracer.current.to_h, tracer.current_context]
      raise "first attempt fails" if job.attempt == 1

      "ok"
    end
    work = worker([queue], handlers: { "traced" => handler }, tracing: tracer, max_jobs: 2)
    start_worker(work)
    wait_state(gantry, id, "dead")
    gantry.retry_job(id)
    wait_state(gantry, id, "completed")

    attempt, first, context = seen.pop
    assert_equal 1, attempt
    assert_equal [enqueue_span.trace_id, enqueue_span.span_id, nil, "traced process"],
                 first.values_at(:trace_id, :parent_id, :link, :name), "attempt 1 is the enqueue's child"
    assert_equal "00-#{enqueue_span.trace_id}-#{first[:span_id]}-01", context[:traceparent]

    attempt, second, = seen.pop
    assert_equal 2, attempt
    refute_equal enqueue_span.trace_id, second[:trace_id], "a retry starts a new trace"
    assert_nil second[:parent_id]
    assert_equal [enqueue_span.trace_id, enqueue_span.span_id], second[:link], "linked to the enqueue's span"
  end

  def test_the_worker_spans_jobs_that_carry_no_traceparent_as_new_traces
    tracer = StackTracer.new
    gantry = client(tracing: false)
    queue = unique_queue("trace")
    id = tracer.in_span("not sent") { gantry.enqueue("plain", [], queue: queue) } # tracing: false sets nothing
    assert_equal({}, gantry.job(id)["meta"])
    seen = Thread::Queue.new
    work = worker([queue], handlers: { "plain" => ->(_) { seen << tracer.current.to_h } }, tracing: tracer, max_jobs: 1)
    assert start_worker(work).join(10)
    span = seen.pop
    assert_equal [nil, nil, "plain process"], span.values_at(:parent_id, :link, :name)
  end

  def test_a_callers_traceparent_wins_and_no_current_span_sets_nothing
    tracer = StackTracer.new(tracestate: "ours=1")
    gantry = client(tracing: tracer)
    queue = unique_queue("trace")
    theirs = "00-#{"ab" * 16}-#{"cd" * 8}-01"
    id, sym = tracer.in_span("request") do
      [gantry.enqueue("t", [], queue: queue, meta: { "traceparent" => theirs }),
       gantry.enqueue("t", [], queue: queue, meta: { traceparent: theirs, "k" => 1 })]
    end
    none = gantry.enqueue("t", [], queue: queue, meta: { "k" => 2 }) # outside any span
    assert_equal({ "traceparent" => theirs }, gantry.job(id)["meta"])
    assert_equal({ "traceparent" => theirs, "k" => 1 }, gantry.job(sym)["meta"])
    assert_equal({ "k" => 2 }, gantry.job(none)["meta"])

    # a batch gets it too, each job its own copy of meta (the caller's Hash is left alone)
    meta = { "shared" => true }.freeze
    batch_span = nil
    ids = tracer.in_span("batch") do |span|
      batch_span = span
      gantry.enqueue_batch([{ type: "t", queue: queue, meta: meta }, { type: "t", queue: queue }])
    end
    assert_equal [{ "shared" => true, "traceparent" => batch_span.traceparent, "tracestate" => "ours=1" },
                  { "traceparent" => batch_span.traceparent, "tracestate" => "ours=1" }],
                 ids.map { |job_id| gantry.job(job_id)["meta"] }
    assert_equal({ "shared" => true }, meta)
  end

  def test_a_broken_provider_is_reported_and_neither_enqueue_nor_the_job_fails
    broken = Gantry::Tracing.provider(current: -> { raise "tracer down" },
                                      job_span: ->(_job, _parent, _link, _run) { raise "tracer down" })
    gantry = client(tracing: broken)
    fatal = []
    gantry.on(:on_fatal_error) { |error, context| fatal << [context[:hook], error.message] }
    queue = unique_queue("trace")
    id = gantry.enqueue("t", [], queue: queue)
    assert_equal [[:tracing, "tracer down"]], fatal

    reported = Thread::Queue.new
    work = worker([queue], handlers: { "t" => ->(_) { "ran" } }, tracing: broken, max_jobs: 1)
    work.on(:on_fatal_error) { |error, context| reported << [context[:hook], error.message] }
    assert start_worker(work).join(10)
    assert_equal ["completed", "ran"], gantry.job(id).values_at("state", "result")
    assert_equal [:tracing, "tracer down"], reported.pop
  end

  def test_without_opentelemetry_or_a_provider_nothing_is_set_and_nothing_fails
    skip "OpenTelemetry is loaded here" if Gantry::Tracing::OpenTelemetryProvider.available?

    assert_equal :auto, Gantry::Tracing.default
    assert_nil Gantry::Tracing.resolve(nil)
    gantry = client
    queue = unique_queue("trace")
    id = gantry.enqueue("t", [], queue: queue)
    assert_equal({}, gantry.job(id)["meta"])
    work = worker([queue], handlers: { "t" => ->(_) { "ran" } }, max_jobs: 1)
    assert start_worker(work).join(10)
    assert_equal "completed", gantry.job(id)["state"]
  end

  # The OpenTelemetry provider against a stand-in for the opentelemetry-api calls it makes (the gem cannot be
  # installed here), in a process of its own so that nothing else sees an ::OpenTelemetry.
  def test_the_opentelemetry_provider_with_a_stand_in_api
    script = File.expand_path("opentelemetry_stand_in.rb", __dir__)
    lib = File.expand_path("../lib", __dir__)
    Open3.popen2e(RbConfig.ruby, "-I", lib, script) do |stdin, output, waiter|
      stdin.close
      reader = Thread.new { output.read }
      unless waiter.join(30)
        Process.kill("KILL", waiter.pid)
        flunk "the stand-in check did not finish within 30 s"
      end
      out = reader.value
      assert waiter.value.success?, out
      assert_equal "ok\n", out.lines.last
    end
  end
end
