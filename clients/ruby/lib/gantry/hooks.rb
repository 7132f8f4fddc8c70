# frozen_string_literal: true

require "logger"

module Gantry
  # Raised (and reported through on_fatal_error) when an around hook breaks its contract: it returned without
  # calling its next step, or called it twice.
  class HookError < Error; end

  # A job about to be enqueued, as the enqueue hooks see it. before_enqueue may change any of it; `meta` and
  # `options` are copies of what the caller passed, so a hook's changes never leak into the caller's Hashes.
  class NewJob
    attr_accessor :type, :args
    # enqueue's keywords (queue:, priority:, run_at:, max_attempts:, meta:, ...), with Symbol keys.
    attr_reader :options
    # The broker's id for it, once enqueued (after_enqueue gets it too).
    attr_accessor :id

    def initialize(type, args = [], options = {})
      @type = type
      @args = args
      @options = options.transform_keys(&:to_sym)
      @options[:meta] = @options[:meta].dup if @options[:meta].is_a?(Hash)
    end

    # The job's meta (a Hash, made on first use); traceparent and tracestate go here.
    def meta
      @options[:meta] ||= {}
    end

    def [](option)
      @options[option.to_sym]
    end

    def []=(option, value)
      @options[option.to_sym] = value
    end

    def inspect
      "#<Gantry::NewJob #{type}#{" #{id}" if id} #{options.except(:meta).inspect}>"
    end
  end

  # How a job's handler (with its before_job and around_job hooks) ended, as after_job sees it: `result` when it
  # returned, `error` when it raised.
  JobOutcome = Struct.new(:result, :error) do
    def ok?
      error.nil?
    end

    def failed?
      !ok?
    end
  end

  # Hooks: code of the application's that runs at each stage of a job's life, in the order of
  # proto-json/hooks.json (NAMES). Register them on a Client (the enqueue hooks), a Worker (the job and
  # lifecycle hooks) or Gantry.hooks (every client and worker of the process, before their own):
  #
  #   Gantry.on(:on_job_failure) { |job, error| Sentry.capture_exception(error, extra: { job: job.id }) }
  #   gantry.on(:before_enqueue) { |job| job.meta["request_id"] = Current.request_id }
  #   worker.on(:around_job) { |job, step| Rails.application.executor.wrap { step.call } }
  #   worker.hooks.register(MetricsHooks.new)  # an object with methods named after hooks
  #
  # A hook is a block or anything with #call; it is called with what NAMES' entry says (a lambda taking fewer
  # gets the first ones). Hooks of one name run in the order they were added (Gantry.hooks' first); an around
  # hook gets the next step last, must call it once, and the first added is the outermost.
  class Hooks
    # proto-json/hooks.json: each name and its kind.
    KINDS = {
      before_enqueue: :before, around_enqueue: :around, after_enqueue: :after,
      before_job: :before, around_job: :around, after_job: :after, on_job_failure: :error,
      on_fatal_error: :error,
      before_startup: :lifecycle, after_startup: :lifecycle, before_shutdown: :lifecycle, after_shutdown: :lifecycle
    }.freeze
    NAMES = KINDS.keys.freeze
    # What a Client runs, and what a Worker does.
    CLIENT = %i[before_enqueue around_enqueue after_enqueue on_fatal_error].freeze
    WORKER = %i[before_job around_job after_job on_job_failure on_fatal_error
                before_startup after_startup before_shutdown after_shutdown].freeze

    # Raised through a hook, never reported as its failure: a worker's stop order, a signal, exit.
    PASS_THROUGH = [WorkerStopped, SignalException, SystemExit, NoMemoryError].freeze

    # names:: those this registry takes (others raise ArgumentError, naming where they belong).
    # parent:: a registry whose hooks run first (a client's and a worker's have Gantry.hooks).
    # logger:: where an error inside on_fatal_error goes (else $stderr).
    def initialize(names: NAMES, parent: nil, logger: nil, owner: "Gantry.hooks")
      @names = names
      @parent = parent
      @logger = logger
      @owner = owner
      @mutex = Mutex.new
      @hooks = {}
    end

    attr_accessor :logger

    # Adds a hook: a callable, or the block. Returns it (for #off).
    def on(name, callable = nil, &block)
      name = check(name)
      callable ||= block
      raise ArgumentError, "the #{name} hook must be a block or respond to #call" unless callable.respond_to?(:call)

      @mutex.synchronize { @hooks[name] = [*@hooks[name], callable].freeze }
      callable
    end

    # Removes a hook added with #on.
    def off(name, callable)
      name = check(name)
      @mutex.synchronize { @hooks[name] = (@hooks[name] || []).reject { |hook| hook.equal?(callable) }.freeze }
      nil
    end

    # Adds each method of `object` named after a hook this registry takes (a Class is instantiated first).
    def register(object)
      object = object.new if object.is_a?(Class)
      names = @names.select { |name| object.respond_to?(name) }
      raise ArgumentError, "#{object.class} has no method named after a hook (#{@names.join(", ")})" if names.empty?

      names.each { |name| on(name, object.method(name)) }
      object
    end

    # The hooks of `name`, the parent's first.
    def [](name)
      [*@parent&.[](name), *@hooks[name]]
    end

    def any?(name)
      !self[name].empty?
    end

    # Removes every hook (not the parent's).
    def clear
      @mutex.synchronize { @hooks = {} }
      nil
    end

    def inspect
      "#<#{self.class} #{@hooks.transform_values(&:size).inspect}>"
    end

    # --- for Client and Worker ---

    # Runs every before hook; the first that raises is reported and its error raised (the later ones do not
    # run).
    def run_before(name, args, context = {})
      self[name].each do |hook|
        invoke(hook, args)
      rescue *PASS_THROUGH
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException -- whatever a hook raises is reported
        report(e, context.merge(hook: name))
        raise
      end
      nil
    end

    # Runs every hook of `name`; errors are reported, never raised: the after and error hooks, lifecycle hooks.
    def run_all(name, args, context = {})
      self[name].each do |hook|
        invoke(hook, args)
      rescue *PASS_THROUGH
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException
        report(e, context.merge(hook: name))
      end
      nil
    end

    # Runs the around hooks of `name` around the block and returns what the block returned (an around hook's
    # own return value is ignored, as with Rails' around callbacks). What the block raises passes through the
    # hooks (which may rescue it: then nil is returned); an error of a hook's own is reported, then raised.
    def run_around(name, args, context = {}, &innermost)
      value = nil
      chain = self[name].reverse.inject(-> { value = innermost.call }) do |inner, hook|
        lambda do
          Step.new(inner).around(hook, name, args) { |error| report(error, context.merge(hook: name)) }
          value # what an outer hook's step.call returns
        end
      end
      chain.call
      value
    end

    # Reports an error outside any job to the on_fatal_error hooks (with `context`: {hook:, job:, worker:,
    # client:}); one that raises there is logged.
    def report(error, context = {})
      hooks = self[:on_fatal_error]
      log_error(error, context, "no on_fatal_error hook") if hooks.empty?
      hooks.each do |hook|
        invoke(hook, [error, context])
      rescue *PASS_THROUGH
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException
        log_error(e, { hook: :on_fatal_error }, "reporting #{error.class}: #{error.message}")
      end
      nil
    end

    # Calls a hook with as many of `args` as it takes (a lambda or method with fewer gets the first ones; a
    # block takes what it names anyway).
    def self.invoke(hook, args, &block)
      callable = hook.is_a?(Proc) || hook.is_a?(Method) ? hook : hook.method(:call)
      arity = callable.arity
      args = args.first(arity) if arity >= 0 && arity < args.size && !(callable.is_a?(Proc) && !callable.lambda?)
      hook.call(*args, &block)
    end

    private

    def invoke(hook, args)
      Hooks.invoke(hook, args)
    end

    def check(name)
      name = name.to_sym
      return name if @names.include?(name)
      raise ArgumentError, "no hook #{name.inspect}: the hooks are #{NAMES.join(", ")}" unless KINDS.key?(name)

      where = CLIENT.include?(name) ? "a Gantry::Client (or Gantry.hooks)" : "a Gantry::Worker (or Gantry.hooks)"
      raise ArgumentError, "#{name} is run by #{where}, not by #{@owner}"
    end

    def log_error(error, context, what)
      where = context[:hook] ? "the #{context[:hook]} hook raised" : "an error outside any job"
      job = context[:job].respond_to?(:id) && context[:job].id ? " (job #{context[:job].id})" : ""
      line = "gantry: #{where}#{job}: #{error.class}: #{error.message} (#{what})"
      @logger ? @logger.error(line) : warn(line)
    end

    # The next step an around hook gets: call it once (#call, or as a block: &step).
    class Step
      def initialize(inner)
        @inner = inner
        @called = false
      end

      def call
        raise HookError, "an around hook called its next step twice" if @called

        @called = true
        begin
          @inner.call
        rescue Exception => e # rubocop:disable Lint/RescueException -- remembered, to tell it from the hook's own
          @passed = e
          raise
        end
      end

      def to_proc
        method(:call).to_proc
      end

      # Runs the hook around this step (given last, and as the block: a method may `yield`); reports (through
      # the block) what the hook itself raised.
      def around(hook, name, args)
        Hooks.invoke(hook, [*args, self], &self)
        raise HookError, "the #{name} hook #{hook.inspect} returned without calling its next step" unless @called
      rescue *PASS_THROUGH
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException
        yield e unless e.equal?(@passed)
        raise
      end
    end
    private_constant :Step
  end

  @hooks = Hooks.new

  class << self
    # The hooks every Gantry::Client and Gantry::Worker of the process runs, before their own.
    attr_reader :hooks

    # Gantry.hooks.on(name) { ... }
    def on(name, callable = nil, &block)
      hooks.on(name, callable, &block)
    end
  end
end
