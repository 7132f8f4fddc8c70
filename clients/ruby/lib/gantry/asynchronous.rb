# frozen_string_literal: true

require "json"

module Gantry
  # Runs a method of a record later, on a worker, through a Gantry job: include it in a class with a way to find
  # an instance by its id (an ActiveRecord model's `find`, or any class method), then declare the methods.
  #
  #   class User < ApplicationRecord
  #     include Gantry::Asynchronous
  #
  #     def send_welcome_email(template, locale: "en") = UserMailer.welcome(self, template, locale).deliver_now
  #     perform_asynchronously :send_welcome_email, queue: "mail", priority: 100, max_attempts: 5
  #   end
  #
  #   user.send_welcome_email_async("spring", locale: "pt") # => "1201", the Gantry job's id
  #   user.send_welcome_email("spring")                     # still runs here and now
  #
  # Each declared method is a job type of its own ("User#send_welcome_email", or `type:`) whose args are
  # {"id" => the record's id, "args" => [...], "kwargs" => {...}}. A worker that has its handler (see .handlers,
  # .register; Gantry::ActiveJobWorker has them all) finds the record again by its id and calls the method with
  # the args. Only declared methods can be run this way: a worker has a handler for those alone.
  #
  # At enqueue (so in the caller, never on the worker), the call is checked against the method's parameters as
  # Ruby would, and every argument must be plain JSON that comes back as it went (nil, true, false, Integers,
  # finite Floats, UTF-8 Strings, Arrays, Hashes with String keys): anything else raises NotJSON, an
  # ArgumentError naming the argument (and where in it), and nothing is enqueued.
  #
  # On the worker, a record its finder does not find (nil, or an error of .not_found_errors such as
  # ActiveRecord::RecordNotFound) fails the job for good: retrying cannot bring it back. Other errors (the
  # method's, a database that is down) are retried with the broker's backoff up to max_attempts.
  module Asynchronous
    # The enqueue keywords perform_asynchronously takes (each job of the method gets them).
    ENQUEUE_OPTIONS = %i[queue priority max_attempts timeout_ms delay_ms queue_timeout_ms tags meta].freeze
    # perform_asynchronously's own keywords.
    OWN_OPTIONS = %i[as type finder id client].freeze
    # Seconds each call of the client made by .client may take, connecting included (as for the ActiveJob
    # adapter: an enqueue from a web request must not hang on a broker that stalls).
    DEFAULT_TIMEOUT = 5
    # Arguments nested deeper than this are refused (as JSON's generator does).
    MAX_DEPTH = 100

    # An argument that is not plain JSON (raised at enqueue; nothing is enqueued).
    class NotJSON < ArgumentError; end

    # The record was not found on the worker: the job fails for good (a Gantry::PermanentError).
    class RecordNotFound < PermanentError; end

    # A declared method: its class, names, job type, how its records are found, and its enqueue options.
    Declaration = Struct.new(:owner, :method_name, :async_name, :type, :finder, :id_method, :client, :options,
                             keyword_init: true) do
      def to_s
        "#{owner}##{method_name}"
      end
    end

    @declarations = []
    @mutex = Mutex.new
    @not_found_errors = %w[ActiveRecord::RecordNotFound Mongoid::Errors::DocumentNotFound Sequel::NoMatchingRow]

    class << self
      # The errors (classes, or class names) a finder raises for a record that is not there: a job whose record
      # its finder does not find fails for good. Add yours: Gantry::Asynchronous.not_found_errors << MyStore::Gone
      attr_reader :not_found_errors

      # The client every declaration without its own `client:` enqueues with (nil: see #client).
      attr_writer :client

      def included(base)
        base.extend(ClassMethods)
        super
      end

      # The client asynchronous methods enqueue with, when their declaration gives none: the one set with
      # `Gantry::Asynchronous.client = ...`; else, when ActiveJob's queue adapter is a GantryAdapter, the
      # adapter's client (its URL, token, TLS, timeout and hooks); else one made on first use from $GANTRY_URL
      # (and $GANTRY_TOKEN, ... as for a Client) whose calls time out after DEFAULT_TIMEOUT seconds.
      def client
        @client || adapter&.client || default_client
      end

      # Every declaration, or those of the given classes (and of their subclasses).
      def declarations(*classes)
        all = @mutex.synchronize { @declarations.dup }
        classes.empty? ? all : all.select { |declaration| classes.any? { |klass| declaration.owner <= klass } }
      end

      # {job type => handler} for a Worker: of every declared method (in the classes loaded so far), or of those
      # of the given classes.
      #
      #   Gantry::Worker.new(queues: %w[mail], handlers: Gantry::Asynchronous.handlers(User, Invoice))
      def handlers(*classes)
        declarations(*classes).to_h { |declaration| [declaration.type, Handler.new(declaration)] }
      end

      # Registers the handlers (of every declared method, or of the given classes') on a worker; returns it.
      def register(worker, *classes)
        handlers(*classes).each { |type, handler| worker.register(type, handler) }
        worker
      end

      # Enqueues record.method(*args, **kwargs) as its declaration says, `options` (enqueue's keywords) over the
      # declaration's. Returns the job's id. (What the generated `..._async` methods and #gantry_enqueue call.)
      def enqueue(record, declaration, args, kwargs = {}, options = {})
        label = "#{declaration.owner}##{declaration.async_name}"
        method = record.method(declaration.method_name)
        args, kwargs = Signature.fit(method, args, kwargs, label)
        id = record.__send__(declaration.id_method)
        raise ArgumentError, "#{label}: this #{record.class} has no #{declaration.id_method} (is it saved?)" if id.nil?

        check_json!(label, "its #{declaration.id_method}", id)
        args.each_with_index do |arg, index|
          name = Signature.name_at(method, index, args.size)
          check_json!(label, "argument #{index + 1}#{" (#{name})" if name}", arg)
        end
        kwargs.each { |name, value| check_json!(label, "keyword #{name}:", value) }
        payload = { "id" => id, "args" => args }
        payload["kwargs"] = kwargs.transform_keys(&:to_s) unless kwargs.empty?
        client, defaults = connection(declaration)
        client.enqueue(declaration.type, payload, **defaults, **declaration.options, **options)
      end

      # The record a job is about: the declaration's finder called with the id. Raises RecordNotFound when it
      # answers nil, and marks an error of not_found_errors Permanent: either way the job is not retried.
      def find(declaration, id)
        finder = declaration.finder
        record = begin
          finder.respond_to?(:call) ? finder.call(id) : declaration.owner.public_send(finder, id)
        rescue StandardError => e
          e.extend(Permanent) if not_found?(e) && !e.frozen?
          raise
        end
        return record unless record.nil?

        raise RecordNotFound, "#{declaration.owner} #{id.inspect} was not found (#{finder_call(declaration, id)} " \
                              "returned nil), so #{declaration} cannot run: it was deleted, or the " \
                              "job was enqueued inside a transaction that had not committed (or rolled back); " \
                              "not retried"
      end

      # Whether an error a finder raised says the record is not there.
      def not_found?(error)
        return true if error.is_a?(RecordNotFound)

        error.class.ancestors.any? do |klass|
          @not_found_errors.any? { |known| known.is_a?(Module) ? klass == known : klass.name == known.to_s }
        end
      end

      # Why `value` is not plain JSON that comes back as it went, as [where inside it ("" for itself,
      # '["at"][0]'), what is wrong]; nil when it is.
      def json_problem(value, path = "", depth = 0)
        return [path, "is nested more than #{MAX_DEPTH} deep"] if depth > MAX_DEPTH

        case value
        when nil, true, false, Integer then nil
        when Float then [path, "is #{value}, which JSON cannot carry"] unless value.finite?
        when String then [path, "is a String that is not valid UTF-8 (#{value.encoding})"] unless utf8?(value)
        when Symbol
          [path, "is the Symbol #{value.inspect}, which would come back as the String #{value.to_s.inspect}"]
        when Array
          value.each_with_index do |item, index|
            problem = json_problem(item, "#{path}[#{index}]", depth + 1)
            return problem if problem
          end
          nil
        when Hash
          value.each do |key, item|
            unless key.is_a?(String) && utf8?(key)
              return [path, "has the key #{key.inspect} (a #{key.class}); JSON keys are Strings, so it would come " \
                            "back as #{key.to_s.inspect}: use String keys"]
            end
            problem = json_problem(item, "#{path}[#{key.inspect}]", depth + 1)
            return problem if problem
          end
          nil
        else
          name = value.class.name
          [path, name ? "is #{name.match?(/\A[AEIOU]/) ? "an" : "a"} #{name}" : "is an instance of an anonymous class"]
        end
      end

      # :nodoc: (ClassMethods#perform_asynchronously)
      def declare(declaration)
        @mutex.synchronize do
          clash = @declarations.find { |other| other.type == declaration.type }
          reloaded = clash && clash.owner != declaration.owner && !clash.owner.name.nil? &&
                     clash.owner.name == declaration.owner.name
          if clash && !reloaded
            raise ArgumentError, "#{declaration}: the job type #{declaration.type.inspect} is #{clash}'s already; " \
                                 "give one of them another with type:"
          end

          # A class reloaded (as Rails does in development) replaces its old self's declarations.
          @declarations.delete(clash) if clash
          @declarations << declaration
        end
      end

      private

      def check_json!(label, what, value)
        where, problem = json_problem(value)
        return unless problem

        raise NotJSON, "#{label}: #{what}#{" at #{where}" unless where.empty?} #{problem}. Arguments go to the " \
                       "worker as JSON and must come back as they were: nil, true, false, numbers, Strings, " \
                       "Arrays and Hashes with String keys (pass an id, or a Time as time.iso8601(6))"
      end

      def utf8?(string)
        string.valid_encoding? &&
          (string.encoding == Encoding::UTF_8 || string.ascii_only? ||
           (string.encoding != Encoding::BINARY && string.encode(Encoding::UTF_8).valid_encoding?))
      rescue EncodingError
        false
      end

      def finder_call(declaration, id)
        finder = declaration.finder
        finder.respond_to?(:call) ? "its finder, given #{id.inspect}," : "#{declaration.owner}.#{finder}(#{id.inspect})"
      end

      # [client, default enqueue options] for a declaration.
      def connection(declaration)
        own = declaration.client
        return [own.respond_to?(:enqueue) ? own : own.call, {}] if own
        return [@client, {}] if @client

        adapter = self.adapter
        return [adapter.client, adapter.enqueue_options] if adapter

        [default_client, {}]
      end

      def adapter
        return unless defined?(::ActiveJob::QueueAdapters::GantryAdapter) && defined?(::ActiveJob::Base)

        adapter = ::ActiveJob::Base.queue_adapter
        adapter if adapter.is_a?(::ActiveJob::QueueAdapters::GantryAdapter)
      end

      def default_client
        @default_client || @mutex.synchronize do
          @default_client ||= Client.new(name: "gantry-async", timeout: DEFAULT_TIMEOUT)
        end
      end
    end

    # Checks a call against a method's parameters as Ruby would, before it goes into a job.
    module Signature
      module_function

      # [args, kwargs] as the method will get them: keywords given to a method that takes none become a last
      # positional Hash (as Ruby makes them). Raises ArgumentError as Ruby would for a wrong call.
      def fit(method, args, kwargs, label)
        params = method.parameters
        takes_keywords = params.any? { |type, _| %i[key keyreq keyrest].include?(type) }
        args = args.dup
        kwargs = kwargs.dup
        unless takes_keywords || kwargs.empty?
          args << kwargs
          kwargs = {}
        end
        required = params.count { |type, _| type == :req }
        optional = params.count { |type, _| type == :opt }
        rest = params.any? { |type, _| type == :rest }
        if args.size < required || (!rest && args.size > required + optional)
          expected = rest ? "#{required}+" : (optional.zero? ? required.to_s : "#{required}..#{required + optional}")
          raise ArgumentError, "#{label}: wrong number of arguments (given #{args.size}, expected #{expected}) " \
                               "for #{method_label(method)}"
        end
        odd = kwargs.keys.reject { |name| name.is_a?(Symbol) }
        raise ArgumentError, "#{label}: keyword names are Symbols, not #{odd.map(&:inspect).join(", ")}" if odd.any?

        missing = params.select { |type, name| type == :keyreq && !kwargs.key?(name) }.map(&:last)
        if missing.any?
          raise ArgumentError, "#{label}: missing keyword#{"s" if missing.size > 1}: " \
                               "#{missing.map(&:inspect).join(", ")} for #{method_label(method)}"
        end
        unless params.any? { |type, _| type == :keyrest }
          known = params.select { |type, _| %i[key keyreq].include?(type) }.map(&:last)
          unknown = kwargs.keys - known
          if unknown.any?
            raise ArgumentError, "#{label}: unknown keyword#{"s" if unknown.size > 1}: " \
                                 "#{unknown.map(&:inspect).join(", ")} for #{method_label(method)}"
          end
        end
        [args, kwargs]
      end

      # The name of the parameter that gets positional argument `index` (of `count`), or nil.
      def name_at(method, index, count)
        params = method.parameters.select { |type, _| %i[req opt rest].include?(type) }
        rest = params.index { |type, _| type == :rest }
        leading = rest ? params[0...rest] : params
        trailing = rest ? params[(rest + 1)..] : []
        type, name = if index < leading.size then leading[index]
                     elsif rest && index >= count - trailing.size then trailing[index - (count - trailing.size)]
                     elsif rest then params[rest]
                     end
        return nil unless name

        type == :rest ? "*#{name}" : name.to_s
      end

      def method_label(method)
        names = method.parameters.map do |type, name|
          case type
          when :req then name.to_s
          when :opt then "#{name} = ..."
          when :rest then "*#{name}"
          when :keyreq then "#{name}:"
          when :key then "#{name}: ..."
          when :keyrest then "**#{name}"
          when :block then "&#{name}"
          end
        end
        "#{method.name}(#{names.compact.join(", ")})"
      end
    end

    # The handler a Worker runs for a declared method's jobs: finds the record by its id, calls the method with
    # the args. Its result is the method's return value when that is plain JSON (nil otherwise).
    class Handler
      attr_reader :declaration

      def initialize(declaration)
        @declaration = declaration
      end

      def call(args, _job)
        unless args.is_a?(Hash) && args.key?("id") && args.fetch("args", []).is_a?(Array) &&
               args.fetch("kwargs", {}).is_a?(Hash)
          raise PermanentError, "#{@declaration}: the job's args are not {\"id\", \"args\", \"kwargs\"} as " \
                                "perform_asynchronously enqueues them: #{JSON.generate(args)[0, 200]}"
        end

        record = Asynchronous.find(@declaration, args["id"])
        positional = args["args"] || []
        kwargs = (args["kwargs"] || {}).transform_keys(&:to_sym)
        begin
          positional, kwargs = Signature.fit(record.method(@declaration.method_name), positional, kwargs,
                                             @declaration.to_s)
        rescue ArgumentError, NameError => e
          raise PermanentError, "#{e.message} (the method changed since the job was enqueued?)"
        end
        result = record.__send__(@declaration.method_name, *positional, **kwargs)
        Asynchronous.json_problem(result) ? nil : result
      end

      def inspect
        "#<#{self.class} #{@declaration}>"
      end
    end

    # What `include Gantry::Asynchronous` adds to the class.
    module ClassMethods
      # Declares methods that run later, on a worker: for each, `<name>_async(*args, **kwargs)` (or the name
      # `as:` gives) enqueues a job and returns its id; the method itself still runs at once.
      #
      # queue:, priority:, max_attempts:, timeout_ms:, delay_ms:, queue_timeout_ms:, tags:, meta:: enqueue
      #   keywords for every job of these methods.
      # as:: the async method's name (one method only): `perform_asynchronously :deliver, as: :deliver_later`.
      # type:: the job type (one method only; default "Class#method"): keep it when renaming the class or the
      #   method, so that jobs already enqueued still find their handler.
      # finder:: how the worker finds the record: a class method's name (:find) or a callable taking the id.
      # id:: the instance method giving the id to find it by (:id).
      # client:: a Gantry::Client (or a callable returning one) to enqueue with; default Gantry::Asynchronous.client.
      def perform_asynchronously(*method_names, **options)
        raise ArgumentError, "perform_asynchronously needs the names of methods" if method_names.empty?

        unknown = options.keys - ENQUEUE_OPTIONS - OWN_OPTIONS
        if unknown.any?
          raise ArgumentError, "perform_asynchronously: unknown option#{"s" if unknown.size > 1} " \
                               "#{unknown.map(&:inspect).join(", ")} (it takes " \
                               "#{(ENQUEUE_OPTIONS + OWN_OPTIONS).map { |name| "#{name}:" }.join(", ")})"
        end
        if method_names.size > 1 && (options.key?(:as) || options.key?(:type))
          raise ArgumentError, "perform_asynchronously: as: and type: name one method, not #{method_names.size}"
        end

        method_names.each { |method_name| declare_asynchronous(method_name, options) }
        method_names.size == 1 ? :"#{options.fetch(:as, "#{method_names.first}_async")}" : nil
      end

      # The methods declared asynchronous in this class and its ancestors: {method name => Declaration}.
      def gantry_async_methods
        inherited = superclass.respond_to?(:gantry_async_methods) ? superclass.gantry_async_methods : {}
        inherited.merge(@gantry_async_methods || {})
      end

      private

      def declare_asynchronous(method_name, options)
        method_name = method_name.to_sym
        unless method_defined?(method_name) || private_method_defined?(method_name)
          raise ArgumentError, "perform_asynchronously: #{self}##{method_name} is not defined (declare it after " \
                               "the method's def)"
        end
        if (@gantry_async_methods ||= {}).key?(method_name)
          raise ArgumentError, "perform_asynchronously: #{self}##{method_name} is declared already"
        end

        async_name = options.fetch(:as, "#{method_name}_async").to_sym
        generated = gantry_async_methods.values.map(&:async_name)
        if (method_defined?(async_name) || private_method_defined?(async_name)) && !generated.include?(async_name)
          raise ArgumentError, "perform_asynchronously: #{self}##{async_name} exists already; name the async " \
                               "method with as:"
        end

        declaration = Declaration.new(owner: self, method_name: method_name, async_name: async_name,
                                      type: asynchronous_type(method_name, options[:type]),
                                      finder: asynchronous_finder(options.fetch(:finder, :find)),
                                      id_method: options.fetch(:id, :id).to_sym, client: options[:client],
                                      options: options.slice(*ENQUEUE_OPTIONS).freeze).freeze
        Asynchronous.declare(declaration)
        @gantry_async_methods[method_name] = declaration
        define_method(async_name) do |*args, **kwargs, &block|
          if block
            raise ArgumentError, "#{declaration.owner}##{async_name}: a block cannot go through a job"
          end

          Asynchronous.enqueue(self, declaration, args, kwargs)
        end
        public(async_name)
      end

      def asynchronous_type(method_name, type)
        if type.nil?
          raise ArgumentError, "perform_asynchronously: an anonymous class needs type: for its jobs" if name.nil?

          type = "#{name}##{method_name}"
        end
        type = type.to_s
        unless !type.empty? && type.bytesize <= 255 && !type.match?(/[\u0000-\u001f\u007f-\u009f]/)
          raise ArgumentError, "perform_asynchronously: a job type is 1 to 255 bytes without control characters, " \
                               "not #{type.inspect}"
        end
        type.frozen? ? type : type.dup.freeze
      end

      def asynchronous_finder(finder)
        return finder if finder.respond_to?(:call)
        unless finder.is_a?(Symbol) || finder.is_a?(String)
          raise ArgumentError, "perform_asynchronously: finder: is a class method's name or a callable, " \
                               "not #{finder.class}"
        end

        finder.to_sym
      end
    end

    # Enqueues a declared method with enqueue keywords of this call's own over the declaration's (run_at:,
    # delay_ms:, unique_key:, priority:, ...). Returns the job's id.
    #
    #   user.gantry_enqueue(:send_welcome_email, args: ["spring"], kwargs: { locale: "pt" }, delay_ms: 60_000,
    #                       unique_key: "welcome-#{user.id}")
    def gantry_enqueue(method_name, args: [], kwargs: {}, **options)
      declaration = self.class.gantry_async_methods[method_name.to_sym] or
        raise ArgumentError, "#{self.class}##{method_name} is not declared with perform_asynchronously"

      raise ArgumentError, "gantry_enqueue: args: is an Array, not #{args.class}" unless args.is_a?(Array)
      raise ArgumentError, "gantry_enqueue: kwargs: is a Hash, not #{kwargs.class}" unless kwargs.is_a?(Hash)

      Asynchronous.enqueue(self, declaration, args, kwargs, options)
    end
  end
end
