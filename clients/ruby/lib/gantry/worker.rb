# frozen_string_literal: true

require "logger"
require "socket"

module Gantry
  # Runs handlers for jobs from ordered queues, up to `concurrency` at once, each in its own thread: reserves
  # with a long poll, extends running jobs' leases every third of the lease, acks with the handler's return
  # value, nacks with the exception's message, class and backtrace when it raises (Gantry::PermanentError or
  # another error marked Gantry::Permanent, or a job an operator cancelled while it ran: no retry). Jobs that
  # finish while an ack is on its way are acked together in the next one (see Gantry::AckBatcher).
  #
  # It obeys the broker: after `worker.quiet` it finishes what it holds and reserves nothing more, but keeps
  # running until stopped; after `worker.stop` it hands its running jobs back (nack, kind "WorkerStopped",
  # retry_in_ms 0), stops their handlers and returns from #run.
  #
  #   worker = Gantry::Worker.new(url: "127.0.0.1:7440", queues: %w[critical mail], concurrency: 8,
  #                               handlers: { "email.send" => ->(args, job) { Mailer.deliver(args["to"]) } })
  #   trap("TERM") { worker.stop(timeout: 25) } # finish running jobs for up to 25 s, hand back the rest
  #   worker.run
  #
  # A handler is anything with #call: it gets (args, job) — or just (args) if it takes one argument — where
  # job is a Gantry::Job (id, attempt, meta, cancelled?, operation, package, ...).
  #
  # For a step of an operation a handler may return a Gantry::StepResult (set: globals to merge, jump_to: where
  # the operation goes next, result:): a job with set or jump_to is acked alone, never in a batch.
  #
  # What retrying cannot mend ends #run, which raises it (after handing back what it holds): the broker refusing
  # the token (Gantry::Unauthorized), a role or queue the token may not use (Gantry::Forbidden), TLS that
  # cannot be made safe (Gantry::TLSError). A lost connection is only retried.
  #
  # Hooks (#on, see Gantry::Hooks) run around each job (before_job, around_job and after_job, then
  # on_job_failure, all in the job's thread and before its ack or nack) and around the worker's life
  # (before_startup, after_startup, before_shutdown, after_shutdown, in the thread that called #run). A job
  # whose before_job or around_job hook raises fails as if its handler had raised; an error in any other hook
  # changes nothing. Each is reported to on_fatal_error, as are what ends #run and a crash of its loop.
  #
  # With a trace context provider (see Gantry::Tracing), each job runs inside its span, hooks included.
  class Worker
    UnknownJobType = Class.new(Error)
    # Errors of reserve that end #run rather than being retried.
    FATAL = [Unauthorized, Forbidden, TLSError].freeze

    @running = []
    @running_mutex = Mutex.new

    class << self
      # Whether a Worker of this process has been told to stop (ActiveJob's adapter answers stopping? with it).
      def stopping?
        @running_mutex.synchronize { @running.any?(&:stopping?) }
      end

      def running(worker, yes) # :nodoc:
        @running_mutex.synchronize { yes ? @running << worker : @running.delete(worker) }
      end
    end

    attr_reader :id, :queues, :concurrency, :lease_ms, :handlers
    # This worker's hooks; Gantry.hooks' run first. See Gantry::Hooks.
    attr_reader :hooks

    # url:: the broker, as for Client (default $GANTRY_URL, else 127.0.0.1:7440).
    # token, tls, ca_file, cert_file, key_file:: as for Client (with the same $GANTRY_... fallbacks): the
    #   token needs the worker role (or admin).
    # queues:: queue names, in order of preference.
    # handlers:: {"job type" => callable}; more with #register.
    # lease_ms:: the lease asked for at reserve; running jobs are extended every third of it.
    # wait_ms:: how long one reserve long-polls.
    # max_jobs:: return from #run after this many jobs have finished (nil: run until stopped).
    # timeout:: seconds each call to the broker may take (as for Client; reserve adds wait_ms).
    # tracing:: the trace context provider (see Gantry::Tracing): nil for Gantry::Tracing.default, false for none.
    def initialize(queues:, url: nil, token: nil, tls: nil, ca_file: nil, cert_file: nil, key_file: nil,
                   concurrency: 10, handlers: {}, id: nil, name: "gantry-ruby-worker", lease_ms: 60_000,
                   wait_ms: 2_000, max_jobs: nil, stop_grace: 1.0, logger: nil, timeout: Client::DEFAULT_TIMEOUT,
                   tracing: nil)
      @queues = Array(queues).map(&:to_s)
      raise ArgumentError, "a worker needs at least one queue" if @queues.empty?
      raise ArgumentError, "concurrency must be at least 1" unless concurrency.is_a?(Integer) && concurrency >= 1
      raise ArgumentError, "lease_ms must be at least 1000" unless lease_ms.is_a?(Integer) && lease_ms >= 1000

      @connect = { url: url, token: token, tls: tls, ca_file: ca_file, cert_file: cert_file, key_file: key_file,
                   timeout: timeout }
      @concurrency = concurrency
      @handlers = {}
      handlers.each { |type, handler| register(type, handler) }
      @id = id || "#{Socket.gethostname}:#{Process.pid}"
      @name = name
      @lease_ms = lease_ms
      @wait_ms = wait_ms
      @max_jobs = max_jobs
      @stop_grace = stop_grace
      @logger = logger || Logger.new($stderr, progname: "gantry-worker", level: Logger::INFO)
      @hooks = Hooks.new(names: Hooks::WORKER, parent: Gantry.hooks, logger: @logger, owner: "a Gantry::Worker")
      @tracing = tracing
      @events = Thread::Queue.new
      @wake_reader, @wake_writer = IO.pipe
      @quiet = false
      @stopping = false
      @finished = 0
      @state = :idle
    end

    # Adds a hook (before_job, around_job, after_job, on_job_failure, on_fatal_error, before_startup,
    # after_startup, before_shutdown, after_shutdown): see Gantry::Hooks.
    def on(name, callable = nil, &block)
      @hooks.on(name, callable, &block)
    end

    # Registers the handler for a job type: a callable, or a block.
    def register(type, handler = nil, &block)
      handler ||= block
      raise ArgumentError, "the handler for #{type} must respond to #call" unless handler.respond_to?(:call)

      @handlers[type.to_s] = handler
      self
    end

    # Whether an operator told it to quiet (or #quiet was called): it reserves nothing more until stopped.
    def quiet?
      @quiet
    end

    # Whether it has been told to stop (by #stop, the broker, or an error that ends #run). A long handler may
    # check it and return early: its job is handed back when the stop's timeout ends.
    def stopping?
      @stop_requested || @stopping
    end

    # :idle before #run, :running, :stopped after.
    attr_reader :state

    # The session id of its connection (after it connected).
    def session_id
      @client&.session_id
    end

    # Reserve nothing more; keep running (finishing what it holds) until stopped. Safe in a signal trap.
    def quiet
      post(:quiet)
    end

    # Stop reserving, let running jobs finish for up to `timeout` seconds, then hand the rest back (nack for an
    # immediate retry) and return from #run. Safe in a signal trap.
    def stop(timeout: 0)
      @stop_requested = true
      post([:stop, timeout])
    end

    # Shows neither the URL (it may hold a token) nor the token.
    def inspect
      "#<#{self.class} #{@id} queues=#{@queues.inspect} concurrency=#{@concurrency} #{@state}>"
    end

    def pretty_print(printer)
      printer.text(inspect)
    end

    # Works jobs until stopped (or until max_jobs have finished). Raises what retrying cannot mend (see FATAL).
    def run
      raise Error, "this worker already ran" unless @state == :idle

      @state = :running
      @running = {}
      @reserving = false
      @extending = false
      @reserve_after = now
      @reserve_failures = 0
      @next_extend = now + (@lease_ms / 3000.0)
      @fatal = nil
      Worker.running(self, true)
      @lifecycle = []
      lifecycle(:before_startup)
      @client = Client.new(**@connect, name: @name, worker: hello_worker, tracing: false,
                           on_notification: ->(method, _params) { notified(method) },
                           on_connect: ->(_session_id) { post(:connected) })
      @acks = AckBatcher.new(@client, logger: @logger)
      @logger.info("worker #{@id} started: queues #{@queues.join(", ")}, concurrency #{@concurrency}, " \
                   "handlers #{@handlers.keys.join(", ")}")
      begin
        loop do
          start_reserve if may_reserve?
          wait_for_events
          start_extend if now >= @next_extend
          break if done?
        end
      rescue Exception => e # rubocop:disable Lint/RescueException -- a crash of the loop is reported, then raised
        @hooks.report(e, { worker: self }) unless e.is_a?(Interrupt) || e.is_a?(SystemExit)
        raise
      end
      lifecycle(:before_shutdown) # when max_jobs ended it: no stop order ran it
      hand_back_all
      @logger.info("worker #{@id} stopped")
      raise @fatal if @fatal

      nil
    ensure
      @state = :stopped
      @acks&.close
      @client&.close
      [@wake_reader, @wake_writer].each(&:close)
      lifecycle(:after_shutdown) if @lifecycle&.include?(:before_startup)
      Worker.running(self, false)
    end

    private

    # A job being worked. The first of its handler's thread and the stopping worker to claim it sends its ack
    # or nack.
    class Running
      attr_reader :job
      attr_accessor :thread

      def initialize(job)
        @job = job
        @mutex = Mutex.new
        @claimed = false
      end

      def claim!
        @mutex.synchronize { @claimed ? false : (@claimed = true) }
      end
    end
    private_constant :Running

    def hello_worker
      { "id" => @id, "queues" => @queues, "concurrency" => @concurrency,
        "handlers" => @handlers.keys.map { |type| { "type" => type } } }
    end

    # Called in the client's reader thread: hand over to the run loop.
    def notified(method)
      case method
      when "worker.quiet" then post(:quiet)
      when "worker.stop"
        @stop_requested = true
        post([:stop, 0, :broker])
      else @logger.debug("ignoring the notification #{method}")
      end
    end

    def post(event)
      @events << event
      begin
        @wake_writer.write_nonblock(".")
      rescue IO::WaitWritable, IOError
        nil # the pipe is full: the loop is awake anyway
      end
      nil
    end

    def wait_for_events
      timeout = [@next_extend - now, 0.5].min
      timeout = [timeout, @reserve_after - now].min if !@reserving && @reserve_after > now
      timeout = [timeout, @stop_deadline - now].min if @stopping
      IO.select([@wake_reader], nil, nil, [timeout, 0].max)
      begin
        @wake_reader.read_nonblock(4096)
      rescue IO::WaitReadable
        nil
      end
      loop { handle(@events.pop(true)) }
    rescue ThreadError
      nil # the queue is empty
    end

    def handle(event)
      kind, *rest = event
      case kind
      when :connected
        lifecycle(:after_startup)
      when :quiet
        @logger.info("told to quiet: finishing running jobs, reserving no more until stopped") unless @quiet
        @quiet = true
      when :stop
        timeout, from = rest
        @logger.info(from == :broker ? "told by the broker to stop: handing back running jobs" : "stopping")
        deadline = now + timeout.to_f
        @stop_deadline = @stopping ? [@stop_deadline, deadline].min : deadline
        @stopping = true
        lifecycle(:before_shutdown)
      when :reserved
        @reserving = false
        @reserve_failures = 0
        rest.first.each { |job| start_job(job) }
      when :fatal
        @fatal = rest.first
        @logger.error("cannot go on: #{@fatal.message}")
        @hooks.report(@fatal, { worker: self })
        @stop_deadline = now
        @stopping = true
        lifecycle(:before_shutdown)
      when :reserve_failed
        @reserving = false
        @reserve_failures += 1
        @reserve_after = now + [@reserve_failures * 0.5, 5].min
        @logger.warn("reserve failed (#{rest.first.message}); retrying") unless @stopping
      when :finished
        @running.delete(rest.first)
        @finished += 1
      when :extended
        @extending = false
        extended(rest.first)
      end
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    def may_reserve?
      return false if @quiet || @stopping || @reserving || now < @reserve_after

      free = free_slots
      free.positive? && (free >= [@concurrency / 4, 1].max || @running.empty?)
    end

    def free_slots
      free = @concurrency - @running.size
      free = [free, @max_jobs - @finished - @running.size].min if @max_jobs
      free
    end

    def done?
      return @running.empty? || now >= @stop_deadline if @stopping

      !@max_jobs.nil? && @finished >= @max_jobs && @running.empty?
    end

    def start_reserve
      @reserving = true
      max = free_slots
      Thread.new do
        jobs = @client.reserve(@queues, max: max, wait_ms: @wait_ms, lease_ms: @lease_ms)
        post([:reserved, jobs])
      rescue *FATAL => e
        post([:fatal, e])
      rescue StandardError => e
        post([:reserve_failed, e])
      end
    end

    def start_job(job)
      if @stopping || (@max_jobs && @finished + @running.size >= @max_jobs)
        Thread.new { hand_back(job) }
        return
      end
      running = Running.new(job)
      @running[job.id] = running
      running.thread = Thread.new { perform(running) }
      running.thread.name = "gantry-job #{job.id}"
      running.thread.report_on_exception = false
    end

    def perform(running)
      job = running.job
      outcome = begin
        traced(job) { work(job) }
      rescue WorkerStopped
        nil
      end
      finish(job, *outcome) if outcome && running.claim!
    ensure
      post([:finished, job.id])
    end

    # Runs the job's hooks and handler: [:ok, value] or [:error, exception].
    def work(job)
      context = { worker: self, job: job }
      outcome = begin
        @hooks.run_before(:before_job, [job], context)
        [:ok, @hooks.run_around(:around_job, [job], context) { handle_job(job) }]
      rescue WorkerStopped
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException -- any failure of the handler fails the job
        [:error, e]
      end
      error = outcome[1] if outcome[0] == :error
      @hooks.run_all(:after_job, [job, JobOutcome.new(error ? nil : outcome[1], error)], context)
      @hooks.run_all(:on_job_failure, [job, error], context) if error
      outcome
    end

    def handle_job(job)
      handler = @handlers[job.type] or raise UnknownJobType, "no handler for job type #{job.type} on this worker"
      invoke(handler, job)
    end

    # Runs the block (the job's work) inside its span when there is a trace context provider. The job's error is
    # raised through the provider, so that its span records it; a provider that fails is reported and the job
    # runs (or keeps its outcome) without it.
    def traced(job)
      provider = Tracing.resolve(@tracing)
      return yield unless provider

      outcome = nil
      begin
        provider.in_job_span(job, Tracing.parent_of(job), link: job.attempt.to_i > 1) do
          outcome = yield
          raise outcome[1] if outcome[0] == :error

          outcome[1]
        end
      rescue WorkerStopped
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException
        @hooks.report(e, { hook: :tracing, worker: self, job: job }) unless outcome && e.equal?(outcome[1])
        return outcome || yield
      end
      return outcome if outcome

      @hooks.report(HookError.new("the tracing provider's in_job_span returned without running the job"),
                    { hook: :tracing, worker: self, job: job })
      yield
    end

    # Runs a lifecycle hook once, in the loop's thread.
    def lifecycle(name)
      return if @lifecycle.include?(name)

      @lifecycle << name
      @hooks.run_all(name, [self], { worker: self })
    end

    def invoke(handler, job)
      arity = (handler.is_a?(Proc) || handler.is_a?(Method) ? handler : handler.method(:call)).arity
      case arity
      when 0 then handler.call
      when 1 then handler.call(job.args)
      else handler.call(job.args, job)
      end
    end

    def finish(job, outcome, value)
      if outcome == :ok && value.is_a?(StepResult) && value.steers?
        ack_step(job, value)
      elsif outcome == :ok
        value = value.result if value.is_a?(StepResult)
        begin
          @acks.ack(job, value)
        rescue JSON::GeneratorError, Encoding::UndefinedConversionError => e
          @logger.warn("job #{job.id}: its result is not JSON (#{e.message}); acked without it")
          @acks.ack(job)
        end
        @logger.info("job #{job.id} #{job.type} done")
      else
        fail_job(job, value)
      end
    rescue LeaseLost
      @logger.warn("job #{job.id}: lease lost; it was put back and may run again elsewhere")
    rescue Error => e
      @logger.warn("job #{job.id}: could not #{outcome == :ok ? "ack" : "nack"} it (#{e.message}); " \
                   "the broker puts it back when its lease ends")
    end

    def fail_job(job, error, again: !error.is_a?(Permanent))
      state = @client.nack(job, error, retry: again && !job.cancelled?)["state"]
      @logger.warn("job #{job.id} #{job.type} failed (#{error.class}: #{error.message}); now #{state}")
    end

    # A step's outcome that sets globals or jumps is acked alone, from the handler's thread: the broker takes
    # set and jump_to only in an ack of one job, never in a batch with ids. What the broker refuses (a branch or
    # step the operation lacks, set on a job that is no step) fails the job for good: it is the same each time.
    def ack_step(job, step)
      result = step.result
      begin
        @client.ack(job, result, set: step.set, jump_to: step.jump_to)
      rescue JSON::GeneratorError, Encoding::UndefinedConversionError => e
        raise if result.nil? # then it is set or jump_to that is not JSON

        @logger.warn("job #{job.id}: its result is not JSON (#{e.message}); acked without it")
        result = nil
        retry
      end
      @logger.info("job #{job.id} #{job.type} done")
    rescue JSON::GeneratorError, Encoding::UndefinedConversionError, InvalidParams => e
      raise if e.is_a?(InvalidParams) && !e.field.to_s.start_with?("set", "jump_to")

      @logger.warn("job #{job.id}: its step outcome was refused (#{e.message})")
      fail_job(job, e, again: false)
    end

    def hand_back(job)
      @client.nack(job, { "message" => "the worker was told to stop and handed the job back",
                          "kind" => "WorkerStopped" }, retry: true, retry_in_ms: 0)
      @logger.info("job #{job.id} #{job.type} handed back")
    rescue Error => e
      @logger.warn("job #{job.id}: could not hand it back (#{e.message}); the broker puts it back when the " \
                   "connection closes")
    end

    # On the way out: every job still running goes back to the broker, and its handler is stopped.
    def hand_back_all
      claimed = @running.values.select(&:claim!)
      claimed.map { |running| Thread.new { hand_back(running.job) } }.each(&:join)
      claimed.each { |running| running.thread.raise(WorkerStopped) if running.thread.alive? }
      deadline = now + @stop_grace
      claimed.each { |running| running.thread.join([deadline - now, 0].max) }
    end

    def start_extend
      @next_extend = now + (@lease_ms / 3000.0)
      ids = @running.keys
      return if ids.empty? || @extending

      @extending = true
      Thread.new do
        post([:extended, @client.extend(ids, lease_ms: @lease_ms)])
      rescue StandardError => e
        @logger.warn("could not extend leases (#{e.message})")
        post([:extended, nil])
      end
    end

    def extended(result)
      return unless result

      (result["leases"] || []).each do |lease|
        running = @running[lease["id"]]
        next unless running && lease["cancel_requested"] && !running.job.cancelled?

        @logger.info("job #{lease["id"]} was cancelled by an operator; it will not be retried")
        running.job.cancel_requested!
      end
      lost = result["lost"] || []
      @logger.warn("leases lost while running: #{lost.join(", ")}; those jobs may run again elsewhere") if lost.any?
    end
  end
end
