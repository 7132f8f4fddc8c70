# frozen_string_literal: true

require "active_job"
require "gantry" unless defined?(Gantry::Client)

module Gantry
  # Performs a job enqueued by ActiveJob::QueueAdapters::GantryAdapter (type "active_job", args the job's
  # serialization) with ActiveJob::Base.execute, so callbacks, retry_on and discard_on work as with any
  # backend.
  #
  # Who retries: ActiveJob and the broker never both. An error a retry_on covers is ActiveJob's: it enqueues
  # each retry as a new Gantry job (this one is acked), and when its attempts are spent and it raises the error
  # again (its retry_stopped event), this Gantry job goes to the dead set at once (nack with retry: false), not
  # through the broker's retries on top. Any other error fails the Gantry job, retried with Gantry's backoff up
  # to its max_attempts.
  class ActiveJobHandler
    RETRY_STOPPED = :gantry_active_job_retry_stopped

    def self.watch_retry_stopped
      @watch ||= ::ActiveSupport::Notifications.subscribe("retry_stopped.active_job") do |*event|
        payload = event.last
        Thread.current[RETRY_STOPPED] = payload[:error] if payload.is_a?(Hash)
      end
    end

    def initialize
      self.class.watch_retry_stopped
    end

    def call(args, job)
      Thread.current[RETRY_STOPPED] = nil
      ::ActiveJob::Base.execute(args.merge("provider_job_id" => job.id))
      nil
    rescue Exception => e # rubocop:disable Lint/RescueException -- marked, and raised on
      e.extend(Permanent) if Thread.current[RETRY_STOPPED].equal?(e) && !e.frozen?
      raise
    ensure
      Thread.current[RETRY_STOPPED] = nil
    end
  end

  # A Gantry::Worker that runs ActiveJob jobs, the methods declared with Gantry::Asynchronous's
  # perform_asynchronously in the classes loaded when it is made, and any other handlers given:
  #
  #   require_relative "config/environment"      # boot the Rails app, so job classes (and models) load
  #   Gantry::ActiveJobWorker.new(queues: %w[default mailers], concurrency: 5).run
  class ActiveJobWorker < Worker
    def initialize(queues: ["default"], handlers: {}, name: "gantry-ruby-activejob", **options)
      own = Asynchronous.handlers.merge(ActiveJob::QueueAdapters::GantryAdapter::JOB_TYPE => ActiveJobHandler.new)
      super(queues: queues, handlers: own.merge(handlers), name: name, **options)
    end
  end
end
