# frozen_string_literal: true

module Gantry
  # What a Worker's handler may return for a step of an operation (a job whose Job#operation is set): `set` (a
  # Hash) is merged into the operation's globals, `jump_to` sends the operation elsewhere once this step's place
  # is done (a branch's name, or {branch: "main", step: "charge.card"}), `result` is the job's result.
  #
  #   worker.register("charge.card") do |args, job|
  #     charge = Billing.charge(job.operation["globals"]["user_id"])
  #     next Gantry::StepResult.new(jump_to: "refund") if charge.declined?
  #
  #     Gantry::StepResult.new(set: { "charge_id" => charge.id }, result: { "amount" => charge.amount })
  #   end
  #
  # The worker acks such a job on its own (never together with others: the broker takes set and jump_to only
  # in an ack of one job). When the broker refuses it (a branch or step the operation does not have, set on a
  # job that is no step), the job fails for good, as with Gantry::PermanentError.
  class StepResult
    attr_reader :set, :jump_to, :result

    def initialize(set: nil, jump_to: nil, result: nil)
      raise ArgumentError, "set: is a Hash of globals to merge, not #{set.class}" unless set.nil? || set.is_a?(Hash)

      @set = set
      @jump_to = StepResult.jump_target(jump_to)
      @result = result
      freeze
    end

    # Whether it changes the operation (set or jump_to): the worker then acks it alone.
    def steers?
      !@set.nil? || !@jump_to.nil?
    end

    def inspect
      "#<Gantry::StepResult#{" set=#{@set.inspect}" if @set}#{" jump_to=#{@jump_to.inspect}" if @jump_to}" \
        "#{" result=#{@result.inspect}" unless @result.nil?}>"
    end

    # ack's `jump_to` as sent: a branch's name, or {"branch" =>, "step" =>}.
    def self.jump_target(target)
      case target
      when nil then nil
      when String, Symbol then target.to_s
      when Hash
        target = target.transform_keys(&:to_s)
        unless target.key?("branch") && (target.keys - %w[branch step]).empty?
          raise ArgumentError, "jump_to: is a branch's name or {branch:, step:}, got #{target.inspect}"
        end

        target.transform_values { |value| value.is_a?(Symbol) ? value.to_s : value }
      else
        raise ArgumentError, "jump_to: is a branch's name or {branch:, step:}, not #{target.class}"
      end
    end
  end

  # An operation declared as a class: its name, its default queue and its branches of steps. A step is a job
  # type, a Hash ({type:, queue:, priority:, max_attempts:, timeout_ms:, args:}) or a parallel group.
  #
  #   class Signup < Gantry::Operation
  #     queue "signup"                                   # of every step naming none
  #     branch :main, "account.create", parallel("welcome.send", "crm.sync"), { type: "trial.start", max_attempts: 3 }
  #     branch :refund, "refund.issue"
  #   end
  #
  #   Signup.start(gantry, globals: { user_id: 7 }, key: "user-7")
  #   # => {"id" => "12", "state" => "running", "created" => true}
  #   Signup.list(gantry, state: "failed") # operations.list of this name
  #
  # Its name is the class's ("Billing::Signup" is "billing.signup") unless `operation_name` gives one. A
  # subclass starts with its parent's queue and branches.
  class Operation
    class << self
      # The operation's name; with an argument, sets it.
      def operation_name(name = nil)
        @operation_name = name.to_s unless name.nil?
        @operation_name || default_name
      end

      # The queue of every step naming none (nil: the broker's default); with an argument, sets it.
      def queue(name = nil)
        @queue = name.to_s unless name.nil?
        return @queue if defined?(@queue) && @queue

        superclass.respond_to?(:queue) ? superclass.queue : nil
      end

      # Declares a branch and its steps, in order ("main" is where the operation starts).
      def branch(name, *steps)
        steps = steps.first if steps.size == 1 && steps.first.is_a?(Array)
        raise ArgumentError, "branch #{name} needs at least one step" if steps.empty?

        own_branches[name.to_s] = steps.map { |step| Operation.step(step) }
        self
      end

      # The branches, as operations.start takes them: {"main" => [step, ...], ...}.
      def branches
        inherited = superclass.respond_to?(:branches) ? superclass.branches : {}
        inherited.merge(own_branches)
      end

      # A parallel group: its steps run at once, and all are done before the next place starts.
      def parallel(*steps)
        steps = steps.first if steps.size == 1 && steps.first.is_a?(Array)
        raise ArgumentError, "a parallel group needs at least one step" if steps.empty?

        { "parallel" => steps.map { |step| Operation.step(step) } }
      end

      # Starts it (Client#start_operation); `queue` defaults to the class's.
      def start(client, globals: {}, key: nil, queue: self.queue)
        client.start_operation(operation_name, branches: branches, globals: globals, queue: queue, key: key)
      end

      # Operations of this name, newest first (Client#operations).
      def list(client, **filters)
        client.operations(name: operation_name, **filters)
      end

      # A step as sent: a type String, or a Hash with String keys.
      def step(step)
        case step
        when String, Symbol then step.to_s
        when Hash
          step = step.transform_keys(&:to_s)
          step["parallel"] = step["parallel"].map { |member| step(member) } if step["parallel"].is_a?(Array)
          step["type"] = step["type"].to_s if step["type"].is_a?(Symbol)
          step
        else
          raise ArgumentError, "a step is a job type, a Hash ({type:, queue:, ...}) or parallel(...), not #{step.class}"
        end
      end

      private

      def own_branches
        @own_branches ||= {}
      end

      def default_name
        raise ArgumentError, "an anonymous operation class needs a name: operation_name \"...\"" if name.nil?

        name.split("::").map do |part|
          part.gsub(/([A-Z]+)([A-Z][a-z])/, '\1_\2').gsub(/([a-z\d])([A-Z])/, '\1_\2').downcase
        end.join(".")
      end
    end
  end
end
