# frozen_string_literal: true

module Gantry
  # A job as `reserve` hands it out (and as a Worker's handler sees it). `[]` reaches any field of the reserved
  # job by name, including ones this version does not know.
  #
  # A step of an operation carries `operation`: {"id" =>, "name" =>, "branch" =>, "step" => (its type),
  # "index" =>, "globals" => (as they were when the job was handed out)}; it is nil on other jobs. A step of a
  # package's execution also carries `package`: {"name" =>, "config" => (the config the execution runs with:
  # the package's, with run_package's overrides)}; it is nil on other jobs.
  class Job
    attr_reader :id, :type, :args, :queue, :priority, :attempt, :max_attempts, :meta, :enqueued_at, :lease_expires_at,
                :operation, :package

    def initialize(data)
      @data = data
      @id = data["id"]
      @type = data["type"]
      @args = data["args"]
      @queue = data["queue"]
      @priority = data["priority"]
      @attempt = data["attempt"]
      @max_attempts = data["max_attempts"]
      @meta = data["meta"] || {}
      @enqueued_at = data["enqueued_at"]
      @lease_expires_at = data["lease_expires_at"]
      @operation = data["operation"]
      @package = data["package"]
      @cancelled = false
    end

    def [](key)
      @data[key.to_s]
    end

    def to_h
      @data
    end

    # True once an operator has cancelled this job while it runs (a Worker hears it through `extend`). A long
    # handler may check it and give up; whatever it then raises fails the job for good.
    def cancelled?
      @cancelled
    end

    def cancel_requested! # :nodoc:
      @cancelled = true
    end

    def inspect
      "#<Gantry::Job #{id} #{type} queue=#{queue} attempt=#{attempt}/#{max_attempts}" \
        "#{" operation=#{operation["id"]}" if operation.is_a?(Hash)}" \
        "#{" package=#{package["name"]}" if package.is_a?(Hash)}>"
    end
  end
end
