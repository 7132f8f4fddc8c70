# frozen_string_literal: true

# Run by tracing_test.rb in a process of its own: Gantry::Tracing::OpenTelemetryProvider against a stand-in for
# the parts of the opentelemetry-api gem (1.x) it calls, written from that gem's documented API: Context,
# Trace.current_span / context_with_span / with_span, Trace::Link, Trace::Status.error,
# Trace::Propagation::TraceContext.text_map_propagator (inject, extract), tracer_provider.tracer with
# start_span(with_parent: a Context) and start_root_span. Prints "ok" when every check holds.

require "securerandom"

module OpenTelemetry
  class Context
    def self.empty
      new({})
    end

    def self.current
      Thread.current[:otel_stand_in_context] ||= empty
    end

    def self.with_current(context)
      previous = current
      Thread.current[:otel_stand_in_context] = context
      yield context
    ensure
      Thread.current[:otel_stand_in_context] = previous
    end

    def initialize(values)
      @values = values
    end

    def value(key)
      @values[key]
    end

    def set_value(key, value)
      Context.new(@values.merge(key => value))
    end
  end

  module Trace
    SpanContext = Struct.new(:trace_id, :span_id, :tracestate, :remote, keyword_init: true) do
      def valid?
        !trace_id.nil? && !span_id.nil?
      end
    end

    class Span
      attr_reader :context, :name, :kind, :attributes, :links, :parent_span_id, :exceptions
      attr_accessor :status

      def initialize(context:, name: nil, kind: nil, attributes: nil, links: nil, parent_span_id: nil)
        @context = context
        @name = name
        @kind = kind
        @attributes = attributes
        @links = links
        @parent_span_id = parent_span_id
        @exceptions = []
        @finished = false
      end

      def record_exception(error)
        @exceptions << error
      end

      def finish
        @finished = true
      end

      def finished?
        @finished
      end
    end

    INVALID = Span.new(context: SpanContext.new)
    Link = Struct.new(:span_context, :attributes) do
      def initialize(span_context, attributes = nil)
        super
      end
    end
    Status = Struct.new(:code, :description) do
      def self.error(description = "")
        new(:error, description)
      end
    end

    def self.current_span(context = nil)
      (context || Context.current).value(:span) || INVALID
    end

    def self.context_with_span(span, parent_context: Context.current)
      parent_context.set_value(:span, span)
    end

    def self.with_span(span)
      Context.with_current(context_with_span(span)) { |context| yield span, context }
    end

    module Propagation
      module TraceContext
        def self.text_map_propagator
          TextMapPropagator.new
        end

        class TextMapPropagator
          def inject(carrier, context: Context.current, setter: nil)
            raise "no setter is passed" if setter

            span_context = Trace.current_span(context).context
            return unless span_context.valid?

            carrier["traceparent"] = "00-#{span_context.trace_id}-#{span_context.span_id}-01"
            carrier["tracestate"] = span_context.tracestate unless span_context.tracestate.to_s.empty?
            nil
          end

          def extract(carrier, context: Context.current, getter: nil)
            raise "no getter is passed" if getter

            _, trace_id, span_id, = carrier["traceparent"].to_s.split("-")
            span_context = SpanContext.new(trace_id: trace_id, span_id: span_id, tracestate: carrier["tracestate"],
                                           remote: true)
            Trace.context_with_span(Span.new(context: span_context), parent_context: context)
          end
        end
      end
    end

    class Tracer
      attr_reader :name, :version

      def initialize(name, version)
        @name = name
        @version = version
      end

      def start_span(name, with_parent: nil, attributes: nil, links: nil, start_timestamp: nil, kind: nil)
        raise "no start_timestamp is passed" if start_timestamp

        parent = Trace.current_span(with_parent || Context.current).context
        return start_root_span(name, attributes: attributes, links: links, kind: kind) unless parent.valid?

        Span.new(context: SpanContext.new(trace_id: parent.trace_id, span_id: SecureRandom.hex(8)), name: name,
                 kind: kind, attributes: attributes, links: links, parent_span_id: parent.span_id)
      end

      def start_root_span(name, attributes: nil, links: nil, start_timestamp: nil, kind: nil)
        raise "no start_timestamp is passed" if start_timestamp

        Span.new(context: SpanContext.new(trace_id: SecureRandom.hex(16), span_id: SecureRandom.hex(8)), name: name,
                 kind: kind, attributes: attributes, links: links)
      end
    end
  end

  class TracerProvider
    def tracer(name = nil, version = nil)
      Trace::Tracer.new(name, version)
    end
  end

  def self.tracer_provider
    @tracer_provider ||= TracerProvider.new
  end
end

require "gantry"

def check(what)
  raise "failed: #{what}" unless yield
end

provider = Gantry::Tracing.resolve(nil)
check("auto finds OpenTelemetry once loaded") { provider.is_a?(Gantry::Tracing::OpenTelemetryProvider) }
check("no current span: no context") { Gantry::Tracing.context_from(provider).nil? }

tracer = OpenTelemetry.tracer_provider.tracer("app")
request = tracer.start_root_span("request")
request.context.tracestate = "vendor=1"
context = OpenTelemetry::Trace.with_span(request) { Gantry::Tracing.context_from(provider) }
traceparent = "00-#{request.context.trace_id}-#{request.context.span_id}-01"
check("the current span's context") { context == { "traceparent" => traceparent, "tracestate" => "vendor=1" } }

job = Gantry::Job.new({ "id" => "42", "type" => "mail.send", "queue" => "mail", "attempt" => 1,
                        "meta" => context })
parent = Gantry::Tracing.parent_of(job)
span = nil
inner = provider.in_job_span(job, parent, link: false) do
  span = OpenTelemetry::Trace.current_span
  Gantry::Tracing.context_from(provider)
end
check("attempt 1: the enqueue's child") do
  span.context.trace_id == request.context.trace_id && span.parent_span_id == request.context.span_id &&
    span.links.nil? && span.kind == :consumer && span.name == "mail.send process" && span.finished?
end
check("attributes") do
  span.attributes == { "messaging.system" => "gantry", "messaging.operation" => "process",
                       "messaging.destination.name" => "mail", "messaging.message.id" => "42",
                       "gantry.job.type" => "mail.send", "gantry.job.attempt" => 1 }
end
check("the job's span is current inside") { inner["traceparent"] == "00-#{request.context.trace_id}-#{span.context.span_id}-01" }

retried = Gantry::Job.new(job.to_h.merge("attempt" => 2))
error = RuntimeError.new("flaky")
begin
  provider.in_job_span(retried, parent, link: true) do
    span = OpenTelemetry::Trace.current_span
    raise error
  end
  raise "the job's error was not raised on"
rescue RuntimeError => e
  check("the job's error is raised on") { e.equal?(error) }
end
check("attempt 2: a new trace linked to the enqueue") do
  span.context.trace_id != request.context.trace_id && span.parent_span_id.nil? &&
    span.links.map { |link| [link.span_context.trace_id, link.span_context.span_id] } ==
      [[request.context.trace_id, request.context.span_id]]
end
check("the failure is recorded") do
  span.exceptions == [error] && span.status == OpenTelemetry::Trace::Status.error("RuntimeError: flaky") &&
    span.finished?
end

provider.in_job_span(job, nil, link: false) { span = OpenTelemetry::Trace.current_span }
check("no traceparent: a new trace, no link") { span.parent_span_id.nil? && span.links.nil? && span.context.valid? }
check("the context is restored") { !OpenTelemetry::Trace.current_span.context.valid? }

puts "ok"
