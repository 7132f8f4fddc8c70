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
    class GantryAdapter < (const_defined?(:AbstractAdapter) ? AbstractAdapter : Object) # ActiveJob >= 7.2 has one
      JOB_TYPE = "active_job"

      # ActiveJob priority (Integer or nil) -> Gantry priority (1..32767, or nil for the broker's default).
      def self.priority(value)
        Integer(value).clamp(1, 32_767) unless value.nil?
      end

      # client:: a Gantry::Client to share; else one is made on first use from `url` ($GANTRY_URL by default),
      #   `token`, `tls`, `ca_file`, `cert_file` and `key_file` (as for Gantry::Client, with its $GANTRY_...
      #   fallbacks).
      # enqueue_options:: more enqueue params for every job, e.g. max_attempts: 5, tags: ["rails"].
      def initialize(client = nil, url: nil, token: nil, tls: nil, ca_file: nil, cert_file: nil, key_file: nil,
                     **enqueue_options)
        super()
        @client = client
        @connect = { url: url, token: token, tls: tls, ca_file: ca_file, cert_file: cert_file, key_file: key_file }
        @enqueue_options = enqueue_options
        @mutex = Mutex.new
      end

      def client
        @client || @mutex.synchronize { @client ||= Gantry::Client.new(**@connect, name: "active_job") }
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

      # ActiveJob >= 7.1 (perform_all_later): one enqueue_batch, all or none. Returns how many were enqueued.
      def enqueue_all(jobs)
        batch = jobs.map { |job| { type: JOB_TYPE, args: job.serialize, **params(job, job.scheduled_at) } }
        ids = client.enqueue_batch(batch)
        jobs.zip(ids) do |job, id|
          job.provider_job_id = id
          job.successfully_enqueued = true if job.respond_to?(:successfully_enqueued=)
        end
        ids.size
      end

      private

      def params(job, timestamp)
        @enqueue_options.merge(queue: job.queue_name, priority: self.class.priority(job.priority),
                               run_at: timestamp && Gantry::Client.timestamp(timestamp))
      end
    end
  end
end
