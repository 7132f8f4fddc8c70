# frozen_string_literal: true

require "active_job"
require "gantry" unless defined?(Gantry::Client)

module ActiveJob
  module QueueAdapters
    # ActiveJob on Gantry. Each job becomes a Gantry job of type "active_job" whose args are the job's
    # serialization, in the job's queue; Gantry::ActiveJobWorker performs them.
    #
    #   config.active_job.queue_adapter = :gantry                        # broker from $GANTRY_URL
    #   config.active_job.queue_adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: "gantry://jobs:7440")
    #   config.active_job.queue_adapter = ActiveJob::QueueAdapters::GantryAdapter.new(
    #     url: "gantrys://jobs:7440", token: Rails.application.credentials.gantry_token, ca_file: "config/ca.pem")
    #
    # With :gantry, the token and TLS files come from $GANTRY_TOKEN, $GANTRY_CA_FILE, $GANTRY_CERT_FILE and
    # $GANTRY_KEY_FILE (and the token may be in $GANTRY_URL). The token needs the producer role (or admin).
    #
    # Priority: ActiveJob's priority goes to Gantry unchanged, clamped to Gantry's 1..32767. Both read lower
    # as more urgent (as Delayed Job, Que and GoodJob do); a job without one gets Gantry's default, 16383.
    # So `queue_with_priority 10` runs before jobs without a priority, 20000 after them, and 0 or below
    # runs as 1.
    #
    # Every call it makes, connecting included, gives up after `timeout` seconds (5 by default) with
    # Gantry::TimeoutError, or Gantry::ConnectionError when the broker cannot be reached: perform_later raises
    # it rather than holding the request. wait_until times are sent to the microsecond.
    #
    # Retries: an error a retry_on of the job's class covers is ActiveJob's to retry (each retry is a new Gantry
    # job; once its attempts are spent the Gantry job goes to the dead set at once, see Gantry::ActiveJobHandler);
    # any other error is the broker's, retried with Gantry's backoff up to max_attempts.
    class GantryAdapter < (const_defined?(:AbstractAdapter) ? AbstractAdapter : Object) # ActiveJob >= 7.2 has one
      JOB_TYPE = "active_job"
      # Seconds each call to the broker may take, connecting included: a web request's perform_later must not
      # wait long for a broker that stalls.
      DEFAULT_TIMEOUT = 5

      # ActiveJob priority (Integer or nil) -> Gantry priority (1..32767, or nil for the broker's default).
      def self.priority(value)
        Integer(value).clamp(1, 32_767) unless value.nil?
      end

      # client:: a Gantry::Client to share; else one is made on first use from `url` ($GANTRY_URL by default),
      #   `token`, `tls`, `ca_file`, `cert_file` and `key_file` (as for Gantry::Client, with its $GANTRY_...
      #   fallbacks), `timeout` (seconds per call, connecting included; nil: no limit), `connect_timeout`
      #   (seconds to open the connection, within `timeout`) and `tracing` (see Gantry::Tracing).
      # enqueue_options:: more enqueue params for every job, e.g. max_attempts: 5, tags: ["rails"].
      def initialize(client = nil, url: nil, token: nil, tls: nil, ca_file: nil, cert_file: nil, key_file: nil,
                     timeout: DEFAULT_TIMEOUT, connect_timeout: nil, tracing: nil, **enqueue_options)
        super()
        @client = client
        @connect = { url: url, token: token, tls: tls, ca_file: ca_file, cert_file: cert_file, key_file: key_file,
                     timeout: timeout, connect_timeout: connect_timeout || [timeout, 5].compact.min,
                     tracing: tracing }
        @hooks = client&.hooks ||
                 Gantry::Hooks.new(names: Gantry::Hooks::CLIENT, parent: Gantry.hooks, owner: "the GantryAdapter")
        @enqueue_options = enqueue_options
        @mutex = Mutex.new
      end

      # The enqueue keywords given to new (max_attempts:, tags:, ...): every job it enqueues gets them, and so does
      # every Gantry::Asynchronous method enqueued through it.
      attr_reader :enqueue_options

      def client
        @client || @mutex.synchronize { @client ||= Gantry::Client.new(**@connect, name: "active_job", hooks: @hooks) }
      end

      # Adds an enqueue hook (or on_fatal_error) to the adapter's client: see Gantry::Hooks.
      def on(name, callable = nil, &block)
        @hooks.on(name, callable, &block)
      end

      # ActiveJob >= 7.2 asks whether to hold a job enqueued inside an Active Record transaction until it commits.
      # Yes: the broker keeps jobs in a database of its own, outside the application's transaction, so a job
      # sent at once could run before (or without) the rows it needs. A job class may still say otherwise
      # (self.enqueue_after_transaction_commit = :never, or false on Rails 8).
      def enqueue_after_transaction_commit?
        true
      end

      # Whether a Gantry::Worker of this process has been told to stop (ActiveJob >= 8.1 lets a continuable job
      # stop at its next step then).
      def stopping?
        Gantry::Worker.stopping?
      end

      # Shows neither the URL (it may hold a token) nor the token.
      def inspect
        "#<#{self.class}#{" #{@client.inspect}" if @client}#{" #{@enqueue_options.inspect}" if @enqueue_options.any?}>"
      end

      def pretty_print(printer)
        printer.text(inspect)
      end

      def enqueue(job)
        enqueue_at(job, nil)
      end

      # timestamp: epoch seconds (a Float, as ActiveJob passes it) or a Time.
      def enqueue_at(job, timestamp)
        job.provider_job_id = client.enqueue(JOB_TYPE, job.serialize, **params(job, timestamp))
      end

      # ActiveJob >= 7.1 (perform_all_later): one enqueue_batch, all or none. Sets each job's provider_job_id and
      # successfully_enqueued; returns how many were enqueued. When the batch fails, every job is marked not
      # enqueued and the error raised (nothing was stored, or, after a lost answer, nobody knows).
      def enqueue_all(jobs)
        return 0 if jobs.empty?

        batch = jobs.map { |job| { type: JOB_TYPE, args: job.serialize, **params(job, job.scheduled_at) } }
        ids = begin
          client.enqueue_batch(batch)
        rescue StandardError
          jobs.each { |job| job.successfully_enqueued = false if job.respond_to?(:successfully_enqueued=) }
          raise
        end
        jobs.zip(ids) do |job, id|
          job.provider_job_id = id
          job.successfully_enqueued = !id.nil? if job.respond_to?(:successfully_enqueued=)
        end
        ids.compact.size
      end

      private

      def params(job, timestamp)
        @enqueue_options.merge(queue: job.queue_name, priority: self.class.priority(job.priority),
                               run_at: timestamp && Gantry::Client.timestamp(timestamp))
      end
    end
  end
end
