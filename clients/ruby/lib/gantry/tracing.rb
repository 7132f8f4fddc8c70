# frozen_string_literal: true

module Gantry
  # W3C Trace Context in a job's meta ("traceparent", "tracestate"; proto-json/hooks.json's "tracing"). A Client
  # sets them at enqueue from the current span, unless the caller set them; a Worker runs each job inside its
  # span: a child of the enqueue's on the first attempt, a new trace linked to it on retries (attempt > 1).
  #
  # Who knows the current span is a provider: OpenTelemetry when the application has loaded it (the gem is
  # never required by this one), or any object with these two methods (Gantry::Tracing.provider builds one from
  # two callables):
  #
  #   current_context                  # => {"traceparent" => "00-…", "tracestate" => "…"} or nil (no span)
  #   in_job_span(job, parent, link:)  # runs the block (the job) inside the job's span; parent is the job's
  #                                    # {"traceparent", "tracestate"} (nil when it carries none): its child when
  #                                    # link is false, a new trace linked to it when true
  #
  # Gantry::Tracing.default = provider (or false: none) sets it for the process; tracing: on a Client or Worker
  # for one (nil: the default; false: none).
  module Tracing
    KEYS = %w[traceparent tracestate].freeze
    # version-trace_id-parent_id-flags, lowercase hex; all-zero ids are invalid.
    TRACEPARENT = /\A(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?\z/

    @default = :auto

    class << self
      # :auto (OpenTelemetry when loaded, else nothing), false (nothing) or a provider.
      attr_accessor :default

      # A provider from two callables: `current` returns the current context (or nil); `job_span` gets (job,
      # parent, link, run) and must call run (and return what it returns).
      def provider(current:, job_span:)
        Functions.new(current, job_span)
      end

      # The provider for a client's or worker's `tracing:` setting, or nil.
      def resolve(setting)
        setting = default if setting.nil?
        case setting
        when nil, false then nil
        when :auto then OpenTelemetryProvider.available? ? OpenTelemetryProvider.instance : nil
        else setting
        end
      end

      # The trace context the provider reports, as meta keys, or nil: only a valid traceparent counts, and an
      # empty tracestate is left out.
      def context_from(provider)
        context = provider.current_context
        return nil unless context.respond_to?(:to_h)

        context = context.to_h.transform_keys(&:to_s)
        return nil unless valid?(context["traceparent"])

        state = context["tracestate"].to_s
        { "traceparent" => context["traceparent"].to_s, "tracestate" => (state unless state.empty?) }.compact
      end

      # The job's {"traceparent", "tracestate"}, or nil when its meta has no valid traceparent.
      def parent_of(job)
        meta = job.meta.is_a?(Hash) ? job.meta : {}
        return nil unless valid?(meta["traceparent"])

        { "traceparent" => meta["traceparent"], "tracestate" => meta["tracestate"] }.compact
      end

      def valid?(traceparent)
        traceparent.is_a?(String) && TRACEPARENT.match?(traceparent)
      end
    end

    # See Gantry::Tracing.provider.
    class Functions
      def initialize(current, job_span)
        @current = current
        @job_span = job_span
      end

      def current_context
        @current.call
      end

      def in_job_span(job, parent, link:, &run)
        @job_span.call(job, parent, link, run)
      end
    end

    # OpenTelemetry's API (the opentelemetry-api gem, with an SDK the application configures), used when the
    # application has loaded it; nothing here requires it. Only W3C Trace Context is read and written (not the
    # application's other propagators: meta keeps these two keys). A job's span is a consumer span named
    # "<type> process", with messaging attributes.
    class OpenTelemetryProvider
      def self.available?
        !!(defined?(::OpenTelemetry::Trace::Propagation::TraceContext) && defined?(::OpenTelemetry::Context))
      end

      def self.instance
        @instance ||= new
      end

      def current_context
        carrier = {}
        propagator.inject(carrier)
        carrier.empty? ? nil : carrier
      end

      def in_job_span(job, parent, link:)
        context = parent && propagator.extract(parent, context: ::OpenTelemetry::Context.empty)
        remote = context && ::OpenTelemetry::Trace.current_span(context).context
        remote = nil unless remote&.valid?
        span = if remote && !link
                 tracer.start_span(name(job), with_parent: context, kind: :consumer, attributes: attributes(job))
               else
                 tracer.start_root_span(name(job), kind: :consumer, attributes: attributes(job),
                                                   links: remote && [::OpenTelemetry::Trace::Link.new(remote)])
               end
        begin
          ::OpenTelemetry::Trace.with_span(span) { yield }
        rescue Exception => e # rubocop:disable Lint/RescueException -- the span records the job's failure
          span.record_exception(e)
          span.status = ::OpenTelemetry::Trace::Status.error("#{e.class}: #{e.message}")
          raise
        ensure
          span.finish
        end
      end

      private

      def propagator
        ::OpenTelemetry::Trace::Propagation::TraceContext.text_map_propagator
      end

      def tracer
        ::OpenTelemetry.tracer_provider.tracer("gantry", Gantry::VERSION)
      end

      def name(job)
        "#{job.type} process"
      end

      def attributes(job)
        { "messaging.system" => "gantry", "messaging.operation" => "process",
          "messaging.destination.name" => job.queue.to_s, "messaging.message.id" => job.id.to_s,
          "gantry.job.type" => job.type.to_s, "gantry.job.attempt" => job.attempt.to_i }
      end
    end
  end
end
